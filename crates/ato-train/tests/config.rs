//! The run configuration: defaults, validation errors that name the key, the ATO schedule
//! and devices (run ids: `run_ids.rs`).

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
    let m = cfg.model_config().unwrap();
    assert_eq!((m.num_classes, m.input_size), (10, 32));
    let cfg =
        RunConfig::from_toml("dataset.name = \"imagenet\"\nmodel.name = \"resnet50\"").unwrap();
    let m = cfg.model_config().unwrap();
    assert_eq!((m.num_classes, m.input_size), (1000, 224));
}

#[test]
fn each_bad_value_is_one_line_naming_the_key() {
    for (toml, key) in [
        ("ato.lambda = -1.0", "ato.lambda"),
        ("ato.gamma = -0.5", "ato.gamma"),
        ("ato.settle_lr_mult = 0.0", "ato.settle_lr_mult"),
        ("ato.settle_lr_mult = -2.0", "ato.settle_lr_mult"),
        ("ato.settle_lr_mult = inf", "ato.settle_lr_mult"),
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
        (
            "method = \"hesso\"\nhesso.target_group_sparsity = 1.0",
            "hesso.target_group_sparsity",
        ),
        // SGD rejects Nesterov without momentum at its first step: caught before anything runs
        (
            "optim.momentum = 0.0\noptim.nesterov = true",
            "optim.nesterov",
        ),
        ("train.epochs = 8\noto.n_p = 9", "oto.n_p"),
        ("method = \"hesso\"\nhesso.momentum = 1.0", "hesso.momentum"),
        (
            "method = \"hesso\"\nhesso.last_group = \"lower\"",
            "hesso.last_group",
        ),
        ("hesso.last_group = \"first\"", "hesso.last_group"),
        (
            "model.width_mult = 0.0\nmodel.name = \"mobilenetv2\"",
            "model.width_mult",
        ),
        (
            "dataset.name = \"imagenet\"\ndataset.color_jitter = 1.5",
            "dataset.color_jitter",
        ),
        ("dataset.color_jitter = 0.4", "dataset.color_jitter"),
        ("[prune]\nround_to = 0\n", "prune.round_to"),
        ("[bench]\nbatch = 0\n", "bench.batch"),
        ("[bench]\nrepeats = 0\n", "bench.repeats"),
        ("[dist]\nworld_size = 0\n", "dist.world_size"),
        (
            "[train]\nbatch_size = 10\n[dist]\nworld_size = 4\n",
            "dist.world_size",
        ),
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
        ("train.reproducible = \"exact\"", "exact"),
        ("train.precision = \"fp16\"", "fp16"),
    ] {
        let e = RunConfig::from_toml(toml).unwrap_err().to_string();
        assert!(e.contains(needle), "{toml}: {e}");
    }
}

/// `train.precision = "bf16"` is refused before anything is read or written, in one line that
/// names what this CPU has (no bf16 kernel is built yet); `fp32`, the default, keeps every run
/// id as it was before the key existed.
#[test]
fn bf16_is_refused_in_one_line_naming_the_cpu_s_units() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RunConfig::from_toml("device = \"cpu\"\ntrain.precision = \"bf16\"").unwrap();
    cfg.out_dir = dir.path().join("results").display().to_string();
    cfg.dataset.root = dir.path().join("data").display().to_string();
    let e = run(&cfg, &RunOptions::default()).unwrap_err().to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("train.precision = \"bf16\": this CPU ("), "{e}");
    assert!(e.ends_with("set train.precision = \"fp32\""), "{e}");
    match ato_kernels::cpu::bf16_units() {
        ato_kernels::cpu::Bf16Units::None => {
            assert!(e.contains("neither AMX nor AVX512-BF16"), "{e}")
        }
        units => assert!(
            e.contains(&format!("has {} bf16 units", units.as_str())),
            "{e}"
        ),
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
    // (run_ids.rs pins the default's id; fp32 stays out of the text the id hashes)
    let fp32 = RunConfig::from_toml("train.precision = \"fp32\"").unwrap();
    assert!(!fp32.results_toml().contains("precision"));
    assert_ne!(cfg.run_id(), {
        let mut c = cfg.clone();
        c.train.precision = ato_train::config::Precision::Fp32;
        c.run_id()
    });
}

#[test]
fn train_reproducible_takes_the_kernels_names() {
    // the config's spelling of each mode is the one ato_kernels writes into machine.json and
    // `ato bench --reproducible` parses
    for (name, mode) in ato_kernels::Reproducibility::ALL {
        let cfg = RunConfig::from_toml(&format!("train.reproducible = \"{name}\"")).unwrap();
        assert_eq!(cfg.train.reproducible.kernels(), mode, "{name}");
        assert_eq!(mode.as_str(), name);
        assert_eq!(name.parse::<ato_kernels::Reproducibility>(), Ok(mode));
    }
    assert!("Portable".parse::<ato_kernels::Reproducibility>().is_err());
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

/// The default fractions give the authors' ImageNet epochs at E = 245: controller from 25,
/// prox from 50, λ ×10 from 120 = ⌊(E−5)/2⌋, controller lr ×0.1 from 122 = ⌊0.98(E−5)/2⌋+5,
/// mask frozen at 125.
#[test]
fn the_default_schedule_is_the_authors_at_245_epochs() {
    let cfg = RunConfig::from_toml("train.epochs = 245").unwrap();
    let s = cfg.schedule();
    assert_eq!(
        (
            s.t_start,
            s.t_prox,
            s.lambda_switch,
            s.controller_lr_drop,
            s.t_end
        ),
        (25, 50, 120, 122, 125)
    );
    let p = |e| s.phase(e);
    assert_eq!((p(119).lambda, p(120).lambda), (10.0, 100.0));
    assert!((p(121).controller_lr - 1e-3).abs() < 1e-15);
    assert!((p(122).controller_lr - 1e-4).abs() < 1e-15);
    assert!(p(124).controller && !p(124).frozen && p(125).frozen && !p(125).controller);
    // an explicit switch at T_end is the earlier behaviour
    let cfg = RunConfig::from_toml("train.epochs = 245\nato.lambda_switch = 125").unwrap();
    assert_eq!(cfg.schedule().phase(124).lambda, 10.0);
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

#[test]
fn every_key_is_documented_and_listed_for_help() {
    let keys = ato_train::config::keys();
    // every key the default config serialises is listed (nested tables flattened to dots)
    let table: toml::Table = toml::from_str(&RunConfig::default().to_toml()).unwrap();
    let mut serialised = Vec::new();
    for (k, v) in &table {
        match v {
            toml::Value::Table(t) => serialised.extend(t.keys().map(|f| format!("{k}.{f}"))),
            _ => serialised.push(k.clone()),
        }
    }
    for k in &serialised {
        assert!(
            keys.iter().any(|d| &d.key == k),
            "`{k}` is missing from the key list"
        );
    }
    // keys unset by default (t_start, synth_train, …) are listed too, without a default
    let t_end = keys.iter().find(|d| d.key == "ato.t_end").unwrap();
    assert!(t_end.default.is_empty() && t_end.doc.contains("freezes"));
    assert_eq!(
        keys.iter().find(|d| d.key == "ato.lambda").unwrap().default,
        "10.0"
    );
    // every key has a doc comment (negative control: delete one and this fails)
    for d in &keys {
        assert!(!d.doc.is_empty(), "`{}` has no doc comment", d.key);
    }
    // and every listed key is one the parser accepts
    for d in &keys {
        let (section, field) = d.key.split_once('.').unwrap_or(("", &d.key));
        // a key without a default is a number or a string (e.g. prune.reference_run)
        // (or an enum whose doc names its default: `[default: inner]`)
        let named = d
            .doc
            .split("[default: ")
            .nth(1)
            .and_then(|r| r.split(']').next());
        let named = format!("\"{}\"", named.unwrap_or("x"));
        let values: Vec<&str> = if d.default.is_empty() {
            vec!["1", "\"x\"", &named]
        } else {
            vec![&d.default]
        };
        let parse = |value: &&str| {
            let text = if section.is_empty() {
                format!("{field} = {value}")
            } else {
                format!("[{section}]\n{field} = {value}")
            };
            RunConfig::from_toml(&text)
        };
        if let Some(e) = values
            .iter()
            .map(parse)
            .find_map(|r| r.err())
            .filter(|_| values.iter().map(parse).all(|r| r.is_err()))
        {
            panic!("{}: {e}", d.key);
        }
    }
}

#[test]
fn hesso_runs_at_the_references_momentum_and_window_unless_told_otherwise() {
    // the recipe's SGD with Nesterov momentum 0.9, as every CIFAR recipe sets it
    let recipe = "optim.momentum = 0.9\noptim.nesterov = true\ntrain.epochs = 20\n";
    let hesso = RunConfig::from_toml(&format!("{recipe}method = \"hesso\"")).unwrap();
    hesso.validate().unwrap();
    assert_eq!((hesso.momentum(), hesso.nesterov()), (0.0, false));
    assert_eq!((hesso.hesso_start(), hesso.hesso_pruning_epochs()), (2, 2));
    // negative controls: another method keeps the recipe's momentum; hesso.momentum switches
    let dense = RunConfig::from_toml(&format!("{recipe}method = \"dense\"")).unwrap();
    assert_eq!((dense.momentum(), dense.nesterov()), (0.9, true));
    let ours = RunConfig::from_toml(&format!(
        "{recipe}method = \"hesso\"\nhesso.momentum = 0.9\nhesso.pruning_epochs = 0.3"
    ))
    .unwrap();
    assert_eq!((ours.momentum(), ours.nesterov()), (0.9, true));
    assert_eq!(ours.hesso_pruning_epochs(), 6);
    // the reference's last-group rule with its group-count target
    let lower = RunConfig::from_toml(&format!(
        "{recipe}method = \"hesso\"\nhesso.target_group_sparsity = 0.5\nhesso.last_group = \"lower\""
    ))
    .unwrap();
    lower.validate().unwrap();
    assert_eq!(lower.hesso.last_group, LastGroup::Lower);
    // with AdamW the reference's β₁ is 0.9
    let adamw =
        RunConfig::from_toml("optim.name = \"adamw\"\noptim.nesterov = false\nmethod = \"hesso\"")
            .unwrap();
    assert_eq!((adamw.momentum(), adamw.nesterov()), (0.9, false));
}
