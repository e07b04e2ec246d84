//! `ato check-gpu --device cpu`: the whole check (numerics, bench, demo epochs, 2 ranks vs 1) CPU against CPU,
//! tiny, with its table and exit code; and its argument errors.

use std::process::Command;

fn ato() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ato"))
}

#[test]
fn check_gpu_on_cpu_prints_one_passing_table_with_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR").to_string() + "/../..";
    let data = dir.path().join("data");
    let out = ato()
        .current_dir(&root)
        .args([
            "check-gpu",
            "--device",
            "cpu",
            "--models",
            "resnet20",
            "--batch",
            "2",
        ])
        .args([
            "--bench-models",
            "resnet20",
            "--bench-batch",
            "4",
            "--bench-iters",
            "1",
        ])
        .arg("--no-pytorch")
        .args([
            "--demo-set",
            "dataset.synth_train=128",
            "--demo-set",
            "dataset.synth_test=64",
        ])
        .args([
            "--demo-set",
            "model.base_width=4",
            "--demo-set",
            "train.batch_size=32",
        ])
        .args(["--demo-set", &format!("dataset.root={}", data.display())])
        .arg("--out-dir")
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("part "), "{stdout}");
    let has = |part: &str, item: &str, status: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(part) && l.contains(item) && l.trim_end().ends_with(status))
    };
    assert!(
        has("numerics", "resnet20 forward (train-mode logits)", "ok"),
        "{stdout}"
    );
    assert!(has("numerics", "resnet20 backward (", "ok"), "{stdout}");
    assert!(
        has("bench", "train resnet20 (cifar10, batch 4)", "-"),
        "{stdout}"
    );
    assert!(
        has("bench", "infer resnet20 (cifar10, batch 4)", "-"),
        "{stdout}"
    );
    for method in ["dense", "ato", "oto", "otov2"] {
        assert!(has("demo", &format!("{method}, 1 epoch"), "ok"), "{stdout}");
    }
    assert!(
        has("ranks", "dense, 1 epoch, BN eval: 2 ranks vs 1", "ok"),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"all 9 checks passed"), "{stdout}");
}

#[test]
fn check_gpu_argument_errors_are_one_line() {
    for (args, expect) in [
        (
            vec!["--device", "cpu", "--batch", "1"],
            "--batch must be at least 2",
        ),
        (
            vec!["--device", "tpu"],
            "device: `tpu` is not auto, cpu, cuda or cuda:N",
        ),
        (vec!["--device", "cpu", "--models", "vgg16"], "vgg16"),
    ] {
        let out = ato().arg("check-gpu").args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(errors[0].contains(expect), "{args:?}: {stderr}");
    }
}
