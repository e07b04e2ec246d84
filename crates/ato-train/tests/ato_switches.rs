//! ATO's fidelity switches change what they say: the mask the controller's cross-entropy
//! sees, the sampled epoch mask (reproducible from the seed), and the controller plan.

use ato_data::{Dataset, DatasetName, DatasetSpec, Split};
use ato_models::Model;
use ato_train::config::{CeMask, EpochMask, RunConfig};
use ato_train::pruner::ato::Ato;
use ato_train::pruner::Pruner;
use candle_core::{Device, Tensor};

fn setup(dir: &std::path::Path) -> (RunConfig, Model, Dataset) {
    let mut cfg = RunConfig::from_toml(
        "[model]\nbase_width = 4\n[train]\nepochs = 4\nbatch_size = 32\n[ato]\ncontroller_fraction = 0.5\n[bench]\nafter_run = false",
    )
    .unwrap();
    cfg.dataset.root = dir.display().to_string();
    let mut spec = DatasetSpec::new(DatasetName::Synth10, dir);
    spec.synth_size = Some(ato_data::SynthSize {
        train: 64,
        test: 32,
    });
    let train = Dataset::open(&spec, Split::Train).unwrap();
    let model = Model::new(&cfg.model_config().unwrap(), &Device::Cpu, 0).unwrap();
    (cfg, model, train)
}

fn grad_of_first_head(ato: &Ato, model: &Model) -> Vec<f32> {
    let (j, _) = ato.controller_objective(model, 0).unwrap();
    let grads = j.backward().unwrap();
    let (_, var) = ato
        .controller()
        .trainable_vars()
        .into_iter()
        .find(|(n, _)| n == "heads.0.linear.weight")
        .unwrap();
    grads
        .get(var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn relaxed_and_hard_cross_entropy_give_different_controller_gradients() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, model, train) = setup(dir.path());
    cfg.ato.ce_mask = CeMask::Relaxed;
    let relaxed = Ato::new(&cfg, &model, &train, 2).unwrap();
    cfg.ato.ce_mask = CeMask::Hard;
    let hard = Ato::new(&cfg, &model, &train, 2).unwrap();
    let (gr, gh) = (
        grad_of_first_head(&relaxed, &model),
        grad_of_first_head(&hard, &model),
    );
    assert!(gr.iter().any(|&g| g != 0.0) && gh.iter().any(|&g| g != 0.0));
    let diff: f32 = gr.iter().zip(&gh).map(|(a, b)| (a - b).abs()).sum();
    let size: f32 = gh.iter().map(|g| g.abs()).sum();
    assert!(
        diff > 1e-3 * size,
        "same gradient: |Δ| = {diff}, |g| = {size}"
    );
    // the same choice twice is the same gradient (the difference is the switch, not noise)
    let again = Ato::new(&cfg, &model, &train, 2).unwrap();
    assert_eq!(grad_of_first_head(&again, &model), gh);
}

/// Pushes every logit to about −3, where z + 3 + g ≥ 0 is a coin flip for the Gumbel noise g.
fn near_threshold(ato: &Ato) {
    for (name, var) in ato.controller().trainable_vars() {
        if name.ends_with("linear.weight") {
            let (c, d) = var.dims2().unwrap();
            var.set(&Tensor::full(-0.03f32, (c, d), &Device::Cpu).unwrap())
                .unwrap();
        }
    }
}

#[test]
fn sampled_epoch_masks_are_reproducible_from_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, model, train) = setup(dir.path());
    let a = Ato::new(&cfg, &model, &train, 2).unwrap();
    let b = Ato::new(&cfg, &model, &train, 2).unwrap();
    near_threshold(&a);
    near_threshold(&b);
    let (m2, m3) = (a.epoch_mask(2).unwrap(), a.epoch_mask(3).unwrap());
    assert!(!m2.is_full() && m2.dropped_count() < m2.widths().iter().sum::<usize>());
    assert_eq!(m2, a.epoch_mask(2).unwrap(), "same epoch, same draw");
    assert_eq!(m2, b.epoch_mask(2).unwrap(), "same seed, same draw");
    assert_ne!(m2, m3, "another epoch, another draw");
    // the deterministic mask is the same every epoch
    let mut cfg_d = cfg.clone();
    cfg_d.ato.epoch_mask = EpochMask::Deterministic;
    let d = Ato::new(&cfg_d, &model, &train, 2).unwrap();
    near_threshold(&d);
    assert_eq!(d.epoch_mask(2).unwrap(), d.epoch_mask(3).unwrap());
    // another seed draws another mask
    let mut cfg_s = cfg.clone();
    cfg_s.seed = 1;
    let s = Ato::new(&cfg_s, &model, &train, 2).unwrap();
    near_threshold(&s);
    assert_ne!(s.epoch_mask(2).unwrap(), m2);
}

#[test]
fn the_frozen_sampled_mask_is_the_mask_of_epoch_t_end_minus_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, model, train) = setup(dir.path());
    cfg.ato.t_start = Some(ato_train::EpochSpec::Epoch(1));
    cfg.ato.t_end = Some(ato_train::EpochSpec::Epoch(3));
    let mut ato = Ato::new(&cfg, &model, &train, 2).unwrap();
    near_threshold(&ato);
    ato.begin_epoch(2).unwrap();
    let m2 = ato.eval_mask().unwrap().clone();
    assert_eq!(m2, ato.epoch_mask(2).unwrap());
    ato.begin_epoch(3).unwrap();
    assert_eq!(ato.frozen_mask(), Some(&m2));
    assert_eq!(ato.eval_mask(), Some(&m2));
}
