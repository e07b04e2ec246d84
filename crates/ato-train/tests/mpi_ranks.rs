//! Ranks as MPI processes (`dist.backend = "mpi"`; `cargo test -p ato-train --features mpi
//! --test mpi_ranks`, with Open MPI's `mpirun` on PATH). This test binary starts itself under
//! `mpirun -np N`, where the ignored test `mpi_rank` trains one rank; the parent compares the
//! job's weights with N thread ranks: the same bits, since both sum the ranks in rank order.
//! A job whose process count is not `dist.world_size`, or whose ranks run different configs,
//! ends with one line; a rank that dies ends the job, and the job resumes from its checkpoint
//! to the uninterrupted bits.
#![cfg(feature = "mpi")]

use ato_train::config::{DistBackend, EpochSpec, Reproducible};
use ato_train::{run, Method, RunConfig, RunOptions};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

mod ranks_run;
use ranks_run::{last_weights, tiny};

/// The run the MPI ranks train (`ATO_MPI_ROOT` names the folder).
const ROOT: &str = "ATO_MPI_ROOT";

/// ATO on ResNet-20 at base width 4, 320 synthetic images, 4 epochs of 10 steps of 32 images
/// on 2 ranks: the controller, the prox and the frozen mask all happen.
fn job(root: &Path, backend: DistBackend, out: &str) -> RunConfig {
    let mut cfg = tiny(Method::Ato, root, 2, out);
    cfg.train.epochs = 4;
    cfg.ato.t_end = Some(EpochSpec::Epoch(3));
    cfg.train.reproducible = Reproducible::Portable;
    cfg.dist.backend = backend;
    cfg
}

/// What the ranks of a job do differently (`ATO_MPI_CASE`): `skew` gives rank 1 another
/// seed, `stop` stops rank 1 alone in the middle of epoch 1.
const CASE: &str = "ATO_MPI_CASE";

/// One rank of the job `mpirun` started (not a check: the entry point of the processes).
#[test]
#[ignore = "started by mpirun from the tests below"]
fn mpi_rank() {
    let root = std::env::var(ROOT).expect("ATO_MPI_ROOT names the job's folder");
    let rank1 = std::env::var("OMPI_COMM_WORLD_RANK").as_deref() == Ok("1");
    let case = std::env::var(CASE).unwrap_or_default();
    let mut cfg = job(Path::new(&root), DistBackend::Mpi, "mpi");
    if case == "skew" && rank1 {
        cfg.seed = 1;
    }
    let opts = RunOptions {
        stop_at_step: (case == "stop").then_some(15),
        stop_rank: Some(1),
        ..RunOptions::default()
    };
    let out = run(&cfg, &opts);
    ato_train::parallel::finish_mpi();
    let out = out.unwrap();
    assert!(out.summary.top1.is_some_and(f64::is_finite));
}

/// `mpirun -np n` on this test binary's `mpi_rank`; (success, stderr).
fn mpirun(n: usize, root: &Path, case: &str) -> (bool, String) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("mpirun")
        .args(["-np", &n.to_string(), "--oversubscribe"])
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            "mpi_rank",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(ROOT, root)
        .env(CASE, case)
        // root in containers and CI; shared-memory copies that containers forbid
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .output()
        .expect("mpirun (Open MPI) on PATH: apt install openmpi-bin libopenmpi-dev");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Our error lines in a job's stderr (Open MPI adds its own banner).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error: rank"))
        .collect()
}

/// A run's last weights as plain numbers (compared bit for bit).
fn weights(run_dir: &Path) -> HashMap<String, Vec<f32>> {
    last_weights(run_dir)
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn two_mpi_processes_train_the_bits_of_two_thread_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let threads = run(
        &job(dir.path(), DistBackend::Threads, "threads"),
        &RunOptions::default(),
    )
    .unwrap();
    let (ok, stderr) = mpirun(2, dir.path(), "");
    assert!(ok, "mpirun -np 2 failed: {stderr}");
    let mpi_cfg = job(dir.path(), DistBackend::Mpi, "mpi");
    let mpi_dir = ato_train::RunDir::of(&mpi_cfg);
    // the backend is not part of the run id: the same run, another results folder
    assert_eq!(mpi_cfg.run_id(), threads.summary.run_id);
    assert_eq!(weights(mpi_dir.path()), weights(&threads.run_dir));
    let mask = |d: &Path| std::fs::read_to_string(d.join("mask.json")).unwrap();
    assert_eq!(mask(mpi_dir.path()), mask(&threads.run_dir));
    assert!(
        threads.summary.flops_reduction.unwrap() > 0.05,
        "a mask that prunes"
    );
    // control: one rank on the whole batch (train-mode BatchNorm) trains other weights
    let mut one = job(dir.path(), DistBackend::Threads, "one");
    one.dist.world_size = 1;
    let one = run(&one, &RunOptions::default()).unwrap();
    assert_ne!(weights(&one.run_dir), weights(&threads.run_dir));
}

#[test]
fn a_job_of_another_size_than_dist_world_size_ends_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stderr) = mpirun(3, dir.path(), "");
    assert!(!ok, "3 processes for world_size 2 must fail");
    let ours = error_lines(&stderr);
    assert!(!ours.is_empty(), "{stderr}");
    assert!(
        ours.iter()
            .all(|l| l.contains("dist.world_size: 2, but MPI started 3 processes")),
        "{stderr}"
    );
}

#[test]
fn ranks_with_different_configs_stop_before_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stderr) = mpirun(2, dir.path(), "skew");
    assert!(!ok, "rank 1 trains seed 1, rank 0 seed 0");
    let ours = error_lines(&stderr);
    assert_eq!(ours.len(), 1, "{stderr}");
    assert!(
        ours[0].starts_with("error: rank 1 of 2: invalid config: dist:"),
        "{stderr}"
    );
    assert!(ours[0].contains("is not rank 0's"), "{stderr}");
}

#[test]
fn a_rank_that_dies_ends_the_job_and_its_checkpoint_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let whole = run(
        &job(dir.path(), DistBackend::Threads, "threads"),
        &RunOptions::default(),
    )
    .unwrap();
    // rank 1 stops in the middle of epoch 1; rank 0 waits in its next all-reduce
    let (ok, stderr) = mpirun(2, dir.path(), "stop");
    assert!(!ok);
    let ours = error_lines(&stderr);
    assert_eq!(ours.len(), 1, "{stderr}");
    assert!(
        ours[0].starts_with("error: rank 1 of 2: stopped after 1 epochs"),
        "{stderr}"
    );
    // the job again, uninterrupted: from the checkpoint of epoch 0 to the thread ranks' bits
    let (ok, stderr) = mpirun(2, dir.path(), "");
    assert!(ok, "{stderr}");
    let mpi_dir = ato_train::RunDir::of(&job(dir.path(), DistBackend::Mpi, "mpi"));
    assert_eq!(weights(mpi_dir.path()), weights(&whole.run_dir));
    let starts = std::fs::read_to_string(mpi_dir.machine_file()).unwrap();
    assert_eq!(
        starts.matches("\"from_epoch\": 1").count(),
        1,
        "resumed at epoch 1: {starts}"
    );
}
