//! The committed sweeps plan what they promise: the main job runs every baseline at its
//! authors' optimiser settings and at both budgets, and every seed of every method.

use super::{plan, spec};
use ato_train::{EpochSpec, Method};
use std::path::Path;

fn planned(name: &str) -> Vec<super::PlannedRun> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/sweeps")
        .join(format!("{name}.toml"));
    plan(&spec::load(&path).unwrap(), &[]).unwrap()
}

#[test]
fn the_main_job_runs_the_baselines_at_their_authors_settings() {
    let runs = planned("demo");
    // 5 seeds × (dense + 5 methods × 2 budgets)
    assert_eq!(runs.len(), 55);
    for r in &runs {
        let c = &r.config;
        assert_eq!(c.dataset.name, ato_train::DatasetName::Digits);
        match c.method {
            // only_train_once's hyperparameter.py: SGD without momentum; the ResNet-18
            // tutorial's window starts at 10% of the run and lasts 10%
            Method::Hesso => {
                assert_eq!((c.optim.momentum, c.optim.nesterov), (0.0, false));
                assert_eq!(c.hesso.start_epoch, Some(EpochSpec::Fraction(0.1)));
                assert_eq!(c.hesso.pruning_epochs, Some(EpochSpec::Fraction(0.1)));
            }
            Method::Oto | Method::Otov2 => {
                assert_eq!((c.optim.momentum, c.optim.nesterov), (0.0, false));
            }
            // ATO at its authors' code defaults: --lmd 10, γ = 2 · --reg_w 4
            Method::Ato => assert_eq!((c.ato.lambda, c.ato.gamma), (10.0, 8.0)),
            _ => assert_eq!(c.optim.momentum, 0.9),
        }
    }
    for m in [
        Method::Ato,
        Method::Oto,
        Method::Otov2,
        Method::Hesso,
        Method::Magnitude,
    ] {
        for budget in [0.5, 0.7] {
            let seeds: Vec<u64> = runs
                .iter()
                .filter(|r| r.config.method == m && r.config.prune.target_flops_reduction == budget)
                .map(|r| r.config.seed)
                .collect();
            assert_eq!(seeds, vec![0, 1, 2, 3, 4], "{m:?} at {budget}");
        }
    }
}

#[test]
fn the_cifar_sweeps_run_hesso_without_momentum() {
    for name in ["cifar10", "cifar100"] {
        for r in planned(name)
            .iter()
            .filter(|r| r.config.method == Method::Hesso)
        {
            assert_eq!(r.config.optim.momentum, 0.0, "{name}");
            assert!(!r.config.optim.nesterov, "{name}");
        }
    }
}
