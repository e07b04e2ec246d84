//! `Mask::round_kept_up` and `Mask::rounded_count`: kept counts become multiples of N (capped
//! at the gate's width), kept channels stay kept, the best-scored dropped ones come back.

use ato_zig::Mask;

#[test]
fn rounded_counts_are_multiples_of_n_capped_at_the_width() {
    // (kept, n, width) → count, by hand
    for (k, n, w, want) in [
        (1, 8, 64, 8),
        (8, 8, 64, 8),
        (9, 8, 64, 16),
        (57, 8, 64, 64),
        (0, 8, 64, 8),
        (3, 8, 4, 4),
        (11, 4, 16, 12),
        (11, 1, 16, 11),
        (0, 1, 16, 1),
    ] {
        assert_eq!(Mask::rounded_count(k, n, w), want, "({k}, {n}, {w})");
    }
}

#[test]
fn round_kept_up_keeps_the_kept_and_adds_the_best_scored() {
    // gate 0: 3 of 8 kept → 4; gate 1: 5 of 12 kept → 8; gate 2: none of 6 → 4; gate 3: 7 of 7
    let keep = vec![
        vec![true, false, true, false, false, true, false, false],
        vec![
            true, true, false, false, true, false, true, false, true, false, false, false,
        ],
        vec![false; 6],
        vec![true; 7],
    ];
    let scores = vec![
        vec![9.0, 0.1, 9.0, 0.5, 0.7, 9.0, 0.2, 0.6],
        vec![9.0, 9.0, -1.0, 3.0, 9.0, 2.0, 9.0, 1.0, 9.0, 3.0, 0.0, -2.0],
        vec![0.0, 0.0, 5.0, 0.0, 1.0, 0.0],
        vec![0.0; 7],
    ];
    let m = Mask::from_keep(keep.clone());
    let r = m.round_kept_up(&scores, 4);
    assert_eq!(r.kept_counts(), [4, 8, 4, 7]);
    // gate 0: channel 4 (0.7) is the best dropped one
    assert_eq!(
        r.gate(0),
        [true, false, true, false, true, true, false, false]
    );
    // gate 1: 3.0 (channels 3 and 9, lower index first… both come back), 2.0 (channel 5)
    assert_eq!(
        r.gate(1),
        [true, true, false, true, true, true, true, false, true, true, false, false]
    );
    // gate 2: 5.0, 1.0, then the ties at 0.0 go to the lowest indices 0 and 1
    assert_eq!(r.gate(2), [true, true, true, false, true, false]);
    assert_eq!(r.gate(3), [true; 7]);
    // every kept channel stays kept
    for (a, b) in m.gates().iter().zip(r.gates()) {
        assert!(a.iter().zip(b).all(|(&was, &now)| !was || now));
    }
    // rounding is idempotent, and N = 1 changes nothing (not even the empty gate)
    assert_eq!(r.round_kept_up(&scores, 4), r);
    assert_eq!(m.round_kept_up(&scores, 1), m);
    // N larger than a gate: the whole gate
    assert_eq!(m.round_kept_up(&scores, 16).kept_counts(), [8, 12, 6, 7]);
}
