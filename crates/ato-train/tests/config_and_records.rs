//! Run configuration, schedule and records.

use ato_train::*;

fn err(toml: &str) -> String {
    match RunConfig::from_toml(toml).and_then(|c| c.validate().map(|_| c)) {
        Ok(_) => panic!("accepted: {toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_are_valid_and_round_trip_through_toml() {
    let cfg = RunConfig::default();
    cfg.validate().unwrap();
    let back = RunConfig::from_toml(&cfg.to_toml()).unwrap();
    assert_eq!(back, cfg);
    let m = cfg.model_config();
    assert_eq!((m.num_classes, m.input_size), (10, 32));
    let cfg =
        RunConfig::from_toml("dataset.name = \"imagenet\"\nmodel.name = \"resnet50\"").unwrap();
    let m = cfg.model_config();
    assert_eq!((m.num_classes, m.input_size), (1000, 224));
}

#[test]
fn each_bad_value_is_one_line_naming_the_key() {
    for (toml, key) in [
        ("ato.lambda = -1.0", "ato.lambda"),
        ("ato.gamma = -0.5", "ato.gamma"),
        (
            "ato.t_start = 30\nato.t_end = 20",
            "T_start = 30 is after T_end = 20",
        ),
        ("train.epochs = 10\nato.t_prox = 10", "ato.t_prox"),
        (
            "train.epochs = 10\nato.t_start = 4\nato.t_prox = 3",
            "ato.t_prox",
        ),
        ("train.epochs = 10\nato.t_end = 11", "ato.t_end"),
        (
            "prune.target_flops_reduction = 1.0",
            "prune.target_flops_reduction",
        ),
        (
            "prune.target_flops_reduction = 0.0",
            "prune.target_flops_reduction",
        ),
        (
            "prune.target_flops_reduction = -0.3",
            "prune.target_flops_reduction",
        ),
        ("train.epochs = 0", "train.epochs"),
        ("optim.lr = 0.0", "optim.lr"),
        ("optim.momentum = 1.0", "optim.momentum"),
        ("ato.controller_fraction = 0.0", "ato.controller_fraction"),
        (
            "otov2.target_group_sparsity = 1.5",
            "otov2.target_group_sparsity",
        ),
        ("device = \"tpu\"", "device"),
        ("ato.t_end = 1.5", "ato.t_end"),
        (
            "optim.name = \"adamw\"\noptim.nesterov = true",
            "optim.nesterov",
        ),
        ("train.epochs = 8\noto.n_p = 9", "oto.n_p"),
        (
            "model.width_mult = 0.0\nmodel.name = \"mobilenetv2\"",
            "model.width_mult",
        ),
        (
            "dataset.name = \"imagenet\"\ndataset.color_jitter = 1.5",
            "dataset.color_jitter",
        ),
        ("dataset.color_jitter = 0.4", "dataset.color_jitter"),
    ] {
        let e = err(toml);
        assert!(e.contains(key), "{toml}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

#[test]
fn unknown_keys_and_bad_enums_are_rejected() {
    for (toml, needle) in [
        ("ato.lamda = 1.0", "lamda"),
        ("trian.epochs = 3", "trian"),
        ("method = \"prune\"", "prune"),
        ("model.name = \"resnet19\"", "resnet19"),
        ("dataset.name = \"mnist\"", "mnist"),
        ("ato.projector = \"sideways\"", "sideways"),
    ] {
        let e = RunConfig::from_toml(toml).unwrap_err().to_string();
        assert!(e.contains(needle), "{toml}: {e}");
    }
}

#[test]
fn the_schedule_follows_the_design() {
    // E = 100: T_start = 10, T_prox = 20, T_end = 51 (the authors' fractions)
    let cfg =
        RunConfig::from_toml("train.epochs = 100\nato.lambda = 2.0\nato.lambda_final_mult = 5.0")
            .unwrap();
    let s = cfg.schedule();
    assert_eq!((s.t_start, s.t_prox, s.t_end), (10, 20, 51));
    let p = |e| s.phase(e);
    assert!(!p(9).controller && !p(9).prox && !p(9).frozen);
    assert!(p(10).controller && !p(10).prox);
    assert!(p(20).controller && p(20).prox && p(20).lambda == 2.0);
    assert!(p(50).controller && !p(50).frozen);
    assert!(!p(51).controller && p(51).prox && p(51).frozen && p(51).lambda == 10.0);
    // explicit epochs win
    let cfg =
        RunConfig::from_toml("train.epochs = 8\nato.t_start = 1\nato.t_prox = 1\nato.t_end = 4")
            .unwrap();
    cfg.validate().unwrap();
    let s = cfg.schedule();
    assert_eq!((s.t_start, s.t_prox, s.t_end), (1, 1, 4));
}

#[test]
fn epochs_may_be_fractions_of_the_run() {
    let cfg = RunConfig::from_toml(
        "train.epochs = 40\nato.t_start = 0.05\nato.t_end = 30\noto.n_p = 0.5\notov2.start_pruning = 3",
    )
    .unwrap();
    cfg.validate().unwrap();
    let s = cfg.schedule();
    assert_eq!((s.t_start, s.t_prox, s.t_end), (2, 4, 30));
    assert_eq!((cfg.oto_n_p(), cfg.otov2_start()), (20, 3));
    // the same fractions stay valid in a one-epoch smoke run
    let mut one = cfg.clone();
    one.train.epochs = 1;
    one.ato.t_end = Some(EpochSpec::Fraction(0.51));
    one.otov2.start_pruning = Some(EpochSpec::Fraction(0.1));
    one.validate().unwrap();
    assert_eq!(one.schedule().t_end, 1);
}

#[test]
fn csv_files_round_trip_and_leave_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.csv");
    let row = |e: usize| EpochMetrics {
        epoch: e,
        lr: 0.1,
        train_loss: 2.3 - e as f64,
        train_top1: 0.1,
        test_loss: 2.2,
        test_top1: 0.12,
        test_top5: 0.5,
        masked_top1: 0.12,
        mask_macs_ratio: 1.0,
        group_sparsity: 0.0,
        zero_groups: 0,
        controller_loss: 0.0,
        flops_reg: 0.0,
        train_seconds: 1.2,
        seconds: 1.5,
    };
    write_csv_atomically(&path, &[row(0), row(1)]).unwrap();
    let back: Vec<EpochMetrics> = read_csv(&path).unwrap();
    assert_eq!(back, vec![row(0), row(1)]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("epoch,lr,train_loss,train_top1,test_loss,test_top1,test_top5,masked_top1,mask_macs_ratio,group_sparsity,zero_groups,controller_loss,flops_reg,train_seconds,seconds\n"));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    // a truncated file is an error naming the file and row
    std::fs::write(&path, &text[..text.len() - 10]).unwrap();
    let e = read_csv::<EpochMetrics>(&path).unwrap_err().to_string();
    assert!(e.contains("metrics.csv") && e.contains("row 2"), "{e}");
}

#[test]
fn checkpoints_swap_atomically_and_survive_a_kill_mid_swap() {
    let dir = tempfile::tempdir().unwrap();
    let ck = CheckpointDir::new(dir.path());
    assert!(ck.latest().unwrap().is_none());
    let state = |e| RunState {
        epochs_done: e,
        global_step: 10 * e as u64,
        seconds: 1.0,
    };
    ck.save(&state(1), |p| {
        write_text_atomically(&p.join("model.txt"), "one")
    })
    .unwrap();
    ck.save(&state(2), |p| {
        write_text_atomically(&p.join("model.txt"), "two")
    })
    .unwrap();
    let (path, s) = ck.latest().unwrap().unwrap();
    assert_eq!(s.epochs_done, 2);
    assert_eq!(
        std::fs::read_to_string(path.join("model.txt")).unwrap(),
        "two"
    );
    // a failing writer leaves the last checkpoint in place
    let e = ck.save(&state(3), |_| {
        Err(ato_train::TrainError::Io("disk full".into()))
    });
    assert!(e.is_err());
    assert_eq!(ck.latest().unwrap().unwrap().1.epochs_done, 2);
    // killed between the two renames: only checkpoint.old exists
    std::fs::rename(
        dir.path().join("checkpoint"),
        dir.path().join("checkpoint.old"),
    )
    .unwrap();
    assert_eq!(ck.latest().unwrap().unwrap().1.epochs_done, 2);
    ck.save(&state(3), |p| {
        write_text_atomically(&p.join("model.txt"), "three")
    })
    .unwrap();
    assert_eq!(ck.latest().unwrap().unwrap().1.epochs_done, 3);
    assert!(
        !dir.path().join("checkpoint.old").exists() && !dir.path().join("checkpoint.new").exists()
    );
}

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
fn devices_are_parsed_and_unavailable_ones_named() {
    assert!(matches!(
        select_device("cpu").unwrap(),
        candle_core::Device::Cpu
    ));
    assert!(select_device("auto").is_ok());
    let e = select_device("gpu").unwrap_err().to_string();
    assert!(e.contains("`gpu`"), "{e}");
    if !candle_core::utils::cuda_is_available() {
        let e = select_device("cuda:1").unwrap_err().to_string();
        assert!(e.contains("cuda:1") && e.contains("device=cpu"), "{e}");
    }
}
