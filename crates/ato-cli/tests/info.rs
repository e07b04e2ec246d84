//! `ato info` against the reference counts of docs/design.md §3 (conv + fc MACs; params include BN
//! affine weights, not running statistics), through the real binary.

use std::process::Command;

fn ato(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ato"))
        .args(args)
        .output()
        .expect("run ato")
}

fn info_json(args: &[&str]) -> serde_json::Value {
    let mut a = vec!["info"];
    a.extend_from_slice(args);
    a.push("--json");
    let out = ato(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn info_matches_every_row_of_the_reference_table() {
    let rows: [(&[&str], u64, u64); 8] = [
        (&["resnet20", "model.shortcut=B"], 272_474, 40_813_184),
        (&["resnet56", "model.shortcut=B"], 855_770, 125_747_840),
        (&["resnet56", "model.shortcut=A"], 853_018, 125_485_696),
        (
            &["resnet110", "--dataset", "cifar10", "model.shortcut=B"],
            1_730_714,
            253_149_824,
        ),
        (
            &["resnet18", "--dataset", "imagenet"],
            11_689_512,
            1_814_073_344,
        ),
        (&["resnet34"], 21_797_672, 3_663_761_408),
        (&["resnet50"], 25_557_032, 4_089_184_256),
        (
            &["mobilenetv2", "--dataset", "imagenet"],
            3_504_872,
            300_774_272,
        ),
    ];
    for (args, params, macs) in rows {
        let v = info_json(args);
        assert_eq!(v["params"], params, "{args:?}");
        assert_eq!(v["macs"], macs, "{args:?}");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["gated_channels", "gates", "macs", "params", "prunable_macs"]
        );
    }
    // ResNet-20: 9 basic blocks gate their inner channel (3 stages × 3 × 16/32/64)
    let v = info_json(&["resnet20"]);
    assert_eq!(v["gates"], 9);
    assert_eq!(v["gated_channels"], 3 * (16 + 32 + 64));
    // not prunable: the stem (27·16·32²), the classifier (64·10) and the two 1×1 projection
    // shortcuts (16·32·16² and 32·64·8²)
    assert_eq!(
        v["macs"].as_u64().unwrap() - v["prunable_macs"].as_u64().unwrap(),
        27 * 16 * 1024 + 640 + 16 * 32 * 256 + 32 * 64 * 64
    );
    // CIFAR-100 changes only the classifier: 64 · 90 more MACs
    let v100 = info_json(&["resnet20", "--dataset", "cifar100"]);
    assert_eq!(
        v100["macs"].as_u64().unwrap() - v["macs"].as_u64().unwrap(),
        64 * 90
    );
    // a compact model's widths are config keys
    let half = info_json(&["resnet20", "model.widths=[8,8,8,16,16,16,32,32,32]"]);
    assert!(half["macs"].as_u64().unwrap() < v["macs"].as_u64().unwrap());
    assert_eq!(half["gated_channels"], 3 * (8 + 16 + 32));
}

#[test]
fn bad_input_gives_one_error_line_and_a_failure_code() {
    for (args, needle) in [
        (vec!["info", "resnet19"], "unknown model `resnet19`"),
        (vec!["info", "resnet20", "model.shortcutt=A"], "shortcutt"),
        (vec!["info", "resnet20", "model.shortcut=C"], "shortcut"),
        (vec!["info", "resnet20", "shortcut"], "key=value"),
        (
            vec!["info", "resnet20", "model.widths=[1,2]"],
            "expected 9 gate widths, got 2",
        ),
        (
            vec!["info", "mobilenetv2", "model.width_mult=-1"],
            "model.width_mult",
        ),
    ] {
        let out = ato(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}
