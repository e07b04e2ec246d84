//! Run ids: stable across versions for the settings they hashed, and moved by every setting that
//! changes a run's numbers.

use ato_train::*;

#[test]
fn run_ids_are_stable_and_follow_the_settings() {
    let a = RunConfig::default();
    let mut b = a.clone();
    b.name = "other".into();
    b.out_dir = "elsewhere".into();
    assert_eq!(
        a.run_id(),
        b.run_id(),
        "name and out_dir do not change the run"
    );
    assert!(a.run_id().starts_with("ato-resnet20-s0-"));
    let mut c = a.clone();
    c.ato.lambda = 1.0;
    assert_ne!(a.run_id(), c.run_id());
    // where the data lives, and other methods' settings, do not change a run
    let mut d = a.clone();
    d.dataset.root = "/elsewhere".into();
    d.oto.lambda = 0.5;
    assert_eq!(a.run_id(), d.run_id());
    let (mut oto, mut oto2) = (a.clone(), a.clone());
    oto.method = Method::Oto;
    oto2.method = Method::Oto;
    oto2.ato.lambda = 99.0;
    oto2.prune.target_flops_reduction = 0.3;
    assert_eq!(oto.run_id(), oto2.run_id());
    oto2.oto.lambda = 0.5;
    assert_ne!(oto.run_id(), oto2.run_id());
    assert_eq!(
        a.run_dir(),
        std::path::Path::new("results/default").join(a.run_id())
    );
}

#[test]
fn a_synthetic_runs_id_follows_the_generator_version_and_a_real_runs_does_not() {
    // the dense run of results/small (1,500 / 500 synthetic images, 15 epochs), whose id was
    // written by generator v2, before ids carried a version: that id stays valid
    let mut dense = RunConfig {
        method: Method::Dense,
        ..Default::default()
    };
    dense.dataset.synth_train = Some(1500);
    dense.dataset.synth_test = Some(500);
    dense.train.epochs = 15;
    assert_eq!(dense.run_id_for_generator(2), "dense-resnet20-s0-27d543f1");
    assert_eq!(dense.run_id_for_generator(1), dense.run_id_for_generator(2));
    // from v3 on, other images give another id, and today's run id is today's generator's
    assert_ne!(dense.run_id_for_generator(3), dense.run_id_for_generator(2));
    assert_ne!(dense.run_id_for_generator(3), dense.run_id_for_generator(4));
    let today = ato_data::synth::GENERATOR_VERSION;
    assert_eq!(dense.run_id(), dense.run_id_for_generator(today));
    // a real data set's images do not come from the generator
    let mut cifar = dense.clone();
    cifar.dataset.name = "cifar10".parse().unwrap();
    assert_eq!(cifar.run_id_for_generator(3), cifar.run_id_for_generator(2));
    assert_ne!(cifar.run_id(), dense.run_id());
}

/// 64-bit FNV-1a, as `run_id` hashes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn bench_keys_and_round_to_one_leave_run_ids_as_they_were() {
    let a = RunConfig::default();
    assert_eq!(
        (a.bench.after_run, a.bench.batch, a.bench.repeats),
        (true, 64, 5)
    );
    assert_eq!(a.prune.round_to, 1);
    // the id hashes config.toml as it was before `[bench]`, `prune.round_to`,
    // `convergence.inject` and (outside HESSO runs) `hesso.momentum`/`last_group` existed (with the keys that do not change a run cleared)
    let mut key = a.clone();
    key.name.clear();
    key.out_dir.clear();
    key.dataset.root.clear();
    let text = key.to_toml();
    let bench = text.find("\n[bench]\n").expect("a [bench] table");
    let after = text[bench + 1..]
        .find("\n\n")
        .map_or(text.len(), |e| bench + 1 + e + 1);
    let before = format!("{}{}", &text[..bench], &text[after..])
        .replace("round_to = 1\n", "")
        .replace("inject = \"none\"\n", "")
        .replace("last_group = \"next\"\n", "")
        .replace("reproducible = \"machine\"\n", "")
        .replace("precision = \"fp32\"\n", "")
        .replace("\n[dist]\nworld_size = 1\nbackend = \"threads\"\n", "");
    assert!(!before.contains("bench") && !before.contains("round_to"));
    assert!(!before.contains("inject") && !before.contains("last_group"));
    assert_eq!(key.results_toml(), before);
    // (as the images of generator v2 were: later versions add their own line)
    assert_eq!(
        a.run_id_for_generator(2),
        format!("ato-resnet20-s0-{:08x}", fnv1a(before.as_bytes()) as u32)
    );
    // portable products change a run's numbers, so its id
    let mut p = a.clone();
    p.train.reproducible = ato_train::config::Reproducible::Portable;
    assert_ne!(a.run_id(), p.run_id());
    // so do data-parallel ranks (each shard's own BatchNorm statistics)
    let mut d = a.clone();
    d.dist.world_size = 2;
    assert_ne!(a.run_id(), d.run_id());
    // which backend carries the sums does not change them
    let mut m = d.clone();
    m.dist.backend = ato_train::config::DistBackend::Mpi;
    assert_eq!(d.run_id(), m.run_id());
    // timing settings do not change a run; rounding does, for every method
    let mut b = a.clone();
    b.bench.after_run = false;
    b.bench.batch = 8;
    assert_eq!(a.run_id(), b.run_id());
    for method in [Method::Ato, Method::Oto, Method::Otov2] {
        let (mut one, mut four) = (a.clone(), a.clone());
        one.method = method;
        four.method = method;
        four.prune.round_to = 4;
        assert_ne!(one.run_id(), four.run_id(), "{method:?}");
    }
}
