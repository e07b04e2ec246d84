//! What "the same numbers" means for two runs that should agree bit for bit (a resumed run
//! and an uninterrupted one): shared by the test files that compare such runs.

use ato_train::{EpochMetrics, RunOutcome};

/// The metrics rows with their wall-clock columns zeroed.
pub fn without_time(m: &[EpochMetrics]) -> Vec<EpochMetrics> {
    m.iter()
        .map(|r| EpochMetrics {
            seconds: 0.0,
            train_seconds: 0.0,
            ..r.clone()
        })
        .collect()
}

/// Every epoch's metrics but the times, the final accuracies, the compact model's size and
/// the controller's step counts are equal.
pub fn assert_same_numbers(a: &RunOutcome, b: &RunOutcome) {
    assert_eq!(without_time(&a.metrics), without_time(&b.metrics));
    let (a, b) = (&a.summary, &b.summary);
    assert_eq!(
        (a.top1, a.compact_top1, a.pruned_macs, a.pruned_params),
        (b.top1, b.compact_top1, b.pruned_macs, b.pruned_params)
    );
    assert_eq!(
        (a.controller_steps, a.settle_steps),
        (b.controller_steps, b.settle_steps)
    );
}
