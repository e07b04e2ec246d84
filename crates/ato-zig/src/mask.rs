//! [`Mask`]: which channels of every gate a pruning method keeps. `true` always means *keep*
//! (the `1 = keep` of `mask.json`); dropped groups are the `false` entries.

use serde::{Deserialize, Serialize};

/// One boolean per channel of every gate, `true` = keep. Serialises as a list of lists.
///
/// ```
/// use ato_zig::Mask;
/// let m = Mask::from_keep(vec![vec![true, false, true], vec![false, true]]);
/// assert_eq!(m.kept_counts(), [2, 1]);
/// assert_eq!(m.dropped_count(), 2);
/// assert!(!m.is_full() && Mask::full(&[3, 2]).is_full());
/// assert_eq!(m.flips(&Mask::full(&[3, 2])), 2);
/// assert_eq!(serde_json::to_string(&m).unwrap(), "[[true,false,true],[false,true]]");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mask {
    keep: Vec<Vec<bool>>,
}

impl Mask {
    /// Keeps every channel of gates of the given widths.
    pub fn full(widths: &[usize]) -> Self {
        Self {
            keep: widths.iter().map(|&w| vec![true; w]).collect(),
        }
    }

    /// From per-gate keep flags.
    pub fn from_keep(keep: Vec<Vec<bool>>) -> Self {
        Self { keep }
    }

    /// From per-gate *drop* flags (`true` = the group is dropped).
    pub fn from_dropped(dropped: &[Vec<bool>]) -> Self {
        Self {
            keep: dropped
                .iter()
                .map(|g| g.iter().map(|&d| !d).collect())
                .collect(),
        }
    }

    /// Per-gate keep flags.
    pub fn gates(&self) -> &[Vec<bool>] {
        &self.keep
    }

    /// Keep flags of gate `l`.
    pub fn gate(&self, l: usize) -> &[bool] {
        &self.keep[l]
    }

    /// Number of gates.
    pub fn len(&self) -> usize {
        self.keep.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    /// Full width of every gate.
    pub fn widths(&self) -> Vec<usize> {
        self.keep.iter().map(Vec::len).collect()
    }

    /// Channels kept per gate (0 where a gate drops everything).
    pub fn kept_counts(&self) -> Vec<usize> {
        self.keep
            .iter()
            .map(|g| g.iter().filter(|&&k| k).count())
            .collect()
    }

    /// Channels dropped per gate.
    pub fn dropped_counts(&self) -> Vec<usize> {
        self.keep
            .iter()
            .map(|g| g.iter().filter(|&&k| !k).count())
            .collect()
    }

    /// Channels dropped over all gates.
    pub fn dropped_count(&self) -> usize {
        self.dropped_counts().iter().sum()
    }

    /// Whether nothing is dropped.
    pub fn is_full(&self) -> bool {
        self.keep.iter().flatten().all(|&k| k)
    }

    /// Whether channel `c` of gate `l` is dropped.
    pub fn is_dropped(&self, l: usize, c: usize) -> bool {
        !self.keep[l][c]
    }

    /// Per-gate drop flags (`true` = dropped), for code that acts on the dropped groups.
    pub fn dropped(&self) -> Vec<Vec<bool>> {
        self.keep
            .iter()
            .map(|g| g.iter().map(|&k| !k).collect())
            .collect()
    }

    /// Channels whose keep flag differs between `self` and `other` (gates of equal widths).
    pub fn flips(&self, other: &Mask) -> usize {
        self.keep
            .iter()
            .zip(&other.keep)
            .map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x != y).count())
            .sum()
    }

    /// The kept count `prune.round_to = n` allows for `kept` channels of a gate of `width`:
    /// ⌈max(kept, 1) / n⌉ · n, capped at `width` (a gate keeps at least one channel, as
    /// compaction does, so at least `n`). `n` ≤ 1 gives `max(kept, 1)` capped at `width`.
    ///
    /// ```
    /// use ato_zig::Mask;
    /// assert_eq!(Mask::rounded_count(5, 4, 16), 8);
    /// assert_eq!(Mask::rounded_count(8, 4, 16), 8);
    /// assert_eq!(Mask::rounded_count(0, 4, 16), 4);
    /// assert_eq!(Mask::rounded_count(13, 8, 12), 12);
    /// assert_eq!(Mask::rounded_count(3, 1, 16), 3);
    /// ```
    pub fn rounded_count(kept: usize, n: usize, width: usize) -> usize {
        (kept.max(1).div_ceil(n.max(1)) * n.max(1)).min(width)
    }

    /// This mask with every gate's kept count rounded up to [`Mask::rounded_count`] (a
    /// multiple of `n`, capped at the gate's width): every kept channel stays kept, and the
    /// dropped channels with the highest `scores` (one per channel, same shape as the mask;
    /// ties go to the lower index) are added until the count is reached. `n` ≤ 1 returns the
    /// mask unchanged. Every pruning method calls this on its selection when
    /// `prune.round_to = n > 1`.
    ///
    /// ```
    /// use ato_zig::Mask;
    /// let m = Mask::from_keep(vec![vec![true, false, false, false, true, false]]);
    /// let scores = vec![vec![0.0, 0.3, 0.9, 0.1, 0.0, 0.3]];
    /// // 2 kept → 4: channels 2 (0.9) and 1 (0.3, lower index than 5) come back
    /// assert_eq!(
    ///     m.round_kept_up(&scores, 4).gate(0),
    ///     [true, true, true, false, true, false]
    /// );
    /// ```
    ///
    /// # Panics
    /// When `scores` does not have the mask's shape.
    pub fn round_kept_up(&self, scores: &[Vec<f32>], n: usize) -> Mask {
        assert_eq!(
            scores.iter().map(Vec::len).collect::<Vec<_>>(),
            self.widths(),
            "one score per channel of every gate"
        );
        let keep = self
            .keep
            .iter()
            .zip(scores)
            .map(|(gate, score)| {
                let kept = gate.iter().filter(|&&k| k).count();
                let goal = if n <= 1 {
                    kept
                } else {
                    Mask::rounded_count(kept, n, gate.len())
                };
                let mut dropped: Vec<usize> = (0..gate.len()).filter(|&c| !gate[c]).collect();
                // highest score first; the stable sort keeps the lower index first on ties
                dropped.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
                let mut out = gate.clone();
                for &c in dropped.iter().take(goal - kept) {
                    out[c] = true;
                }
                out
            })
            .collect();
        Mask { keep }
    }
}
