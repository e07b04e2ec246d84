//! Config layering and every kind of bad input of `ato train` / `ato sweep`, through the real
//! binary: one error line, a failure exit code, and nothing written.

use std::path::Path;
use std::process::{Command, Output};

fn ato(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ato"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run ato")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `ato train` with `args` inside a fresh folder and checks the failure mode.
fn rejected(args: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let results = format!("out_dir={}", dir.path().join("results").display());
    let data = format!("dataset.root={}", dir.path().join("data").display());
    let mut all = vec!["train", results.as_str(), data.as_str()];
    all.extend_from_slice(args);
    let out = ato(&all, &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{args:?}: `{needle}` not in {err}");
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(written.is_empty(), "{args:?} wrote {written:?}");
}

#[test]
fn every_bad_value_is_one_line_and_nothing_is_written() {
    rejected(&["ato.lamda=3"], "lamda");
    rejected(&["trian.epochs=3"], "trian");
    rejected(&["ato.lambda=-1"], "ato.lambda");
    rejected(&["ato.gamma=-0.5"], "ato.gamma");
    rejected(
        &["ato.t_start=30", "ato.t_end=20"],
        "T_start = 30 is after T_end = 20",
    );
    rejected(&["train.epochs=10", "ato.t_prox=10"], "ato.t_prox");
    rejected(
        &["prune.target_flops_reduction=1.0"],
        "prune.target_flops_reduction",
    );
    rejected(
        &["prune.target_flops_reduction=0"],
        "prune.target_flops_reduction",
    );
    rejected(&["optim.lr=0"], "optim.lr");
    rejected(&["method=prune"], "prune");
    rejected(&["model.name=resnet19"], "resnet19");
    rejected(&["train.epochs=ten"], "train.epochs");
    rejected(&["epochs"], "key=value");
    rejected(&["dist.world_size=3"], "dist.world_size");
    // this test's binary is built without the `mpi` feature
    rejected(&["dist.backend=mpi"], "--features mpi");
}

#[test]
fn missing_data_says_where_to_put_it_and_writes_nothing() {
    rejected(&["dataset.name=cifar10"], "cifar-10-batches-bin");
    rejected(&["dataset.name=imagenet"], "train");
    let out = ato(&["train", "no/such/config.toml"], &[]);
    assert!(
        stderr(&out).contains("no/such/config.toml"),
        "{}",
        stderr(&out)
    );
}

fn printed(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = ato(args, env);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn layers_apply_in_order_file_env_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.toml");
    std::fs::write(
        &file,
        "seed = 5\n[train]\nepochs = 7\nbatch_size = 32\n[ato]\nlambda = 3.0\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let merged = printed(&["train", f, "--print-config"], &[]);
    assert!(
        merged.contains("seed = 5") && merged.contains("epochs = 7"),
        "{merged}"
    );
    // the environment overrides the file; arguments override the environment
    let env = [
        ("ATO_TRAIN__EPOCHS", "9"),
        ("ATO_SEED", "6"),
        ("ATO_BACKEND", "fast"),
    ];
    let merged = printed(&["train", f, "ato.lambda=4", "--print-config"], &env);
    assert!(
        merged.contains("epochs = 9") && merged.contains("seed = 6"),
        "{merged}"
    );
    assert!(
        merged.contains("lambda = 4.0") && merged.contains("batch_size = 32"),
        "{merged}"
    );
    let merged = printed(&["train", f, "train.epochs=11", "--print-config"], &env);
    assert!(merged.contains("epochs = 11"), "{merged}");
    // exponent notation is a number, from arguments and from the environment alike
    let merged = printed(
        &["train", f, "optim.weight_decay=5e-4", "--print-config"],
        &[("ATO_OPTIM__LR", "2E-3")],
    );
    assert!(
        merged.contains("weight_decay = 0.0005") && merged.contains("lr = 0.002"),
        "{merged}"
    );
    // a bad environment value is named like a bad argument
    let out = ato(&["train", f, "--print-config"], &[("ATO_ATO__GAMMA", "-2")]);
    assert!(
        !out.status.success() && stderr(&out).contains("ato.gamma"),
        "{}",
        stderr(&out)
    );
}

fn write_sweep(dir: &Path, body: &str) -> String {
    let p = dir.join("s.toml");
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn sweeps_are_validated_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = format!("out_dir={}", dir.path().join("results").display());
    let s = write_sweep(
        dir.path(),
        "[[grid]]\nmethod = \"ato\"\nato.lambda = [1.0, -1.0]\n",
    );
    let out = ato(&["sweep", &s, &out_dir], &[]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("ato.lambda=-1") && err.contains("ato.lambda: -1"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!dir.path().join("results").exists());
    for (body, needle) in [
        ("[[grid]]\nato.lamda = [1.0]\n", "lamda"),
        ("[[grid]]\nmethod = []\n", "lists no values"),
        ("base = \"nowhere.toml\"\n", "nowhere.toml"),
        ("[grids]\nmethod = \"ato\"\n", "grids"),
        ("match_flops = true\nmax_pilots = 0\n", "at least 1"),
        (
            "match_flops = true\nmatch_tolerance = 0.2\n",
            "match_tolerance",
        ),
        (
            "match_flops = true\nmatch_tolerance = -0.01\n",
            "match_tolerance",
        ),
        ("[[grid]]\ndist.backend = \"mpi\"\n", "cannot be MPI jobs"),
    ] {
        let s = write_sweep(dir.path(), body);
        let out = ato(&["sweep", &s, &out_dir], &[]);
        assert!(
            !out.status.success() && stderr(&out).contains(needle),
            "{body}: {}",
            stderr(&out)
        );
    }
    let out = ato(&["sweep", "no-such-sweep"], &[]);
    assert!(
        stderr(&out).contains("no sweep `no-such-sweep`"),
        "{}",
        stderr(&out)
    );
    let out = ato(&["sweep", &s, "--shard", "3/2"], &[]);
    assert!(
        !out.status.success() && stderr(&out).contains("3/2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_and_slurm_describe_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_sweep(
        dir.path(),
        "[set]\ntrain.epochs = 3\n[[grid]]\nmethod = [\"dense\", \"oto\"]\n[[grid]]\nmethod = \"ato\"\nato.lambda = [1.0, 2.0]\n",
    );
    let listing = printed(&["sweep", &s, "--dry-run", "--shard", "1/2"], &[]);
    assert_eq!(
        listing.lines().filter(|l| l.contains("pending")).count(),
        4,
        "{listing}"
    );
    assert_eq!(
        listing.lines().filter(|l| l.starts_with('-')).count(),
        2,
        "other shard marked: {listing}"
    );
    assert!(listing.contains("ato.lambda=2.0"), "{listing}");
    let script = printed(
        &["sweep", &s, "train.epochs=1", "--slurm", "--tasks", "2"],
        &[],
    );
    assert!(script.starts_with("#!/bin/bash"), "{script}");
    assert!(script.contains("#SBATCH --array=0-1"), "{script}");
    assert!(
        script.contains("--shard ${SLURM_ARRAY_TASK_ID}/2") && script.contains("'train.epochs=1'"),
        "{script}"
    );
}

/// A reader that stops early (`ato sweep demo --dry-run | head -1`) ends the listing quietly:
/// no panic message on stderr. (Without the default SIGPIPE action, `println!` panics here.)
#[test]
fn a_closed_pipe_ends_a_listing_without_a_panic() {
    use std::process::{Command, Stdio};
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ato"))
        .args(["sweep", "ablations", "--dry-run"])
        .current_dir(&repo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ato");
    // close the reading end at once: every line the listing prints goes to a closed pipe
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for ato");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.status.success(), "a closed pipe is not a success");
}
