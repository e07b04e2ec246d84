//! A small sweep end to end through the binary: summary rows with the docs/design.md §7 columns,
//! a killed sweep that resumes to the same rows, and a report with its plots.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COLUMNS: &str = "run_id,status,dataset,model,method,seed,lambda,gamma,t_start,t_end,\
target_flops_reduction,epochs,base_params,pruned_params,params_reduction,base_macs,pruned_macs,\
flops_reduction,top1,top5,compact_top1,wall_seconds,target_group_sparsity,group_sparsity,\
target_met,dense_ms,compact_ms,speedup,reference_run,budget,controller_steps,settle_steps,\
controller_images,controller_seconds,calibration_key";

/// A sweep of three tiny runs (ResNet-20 at base width 4 on 384 synthetic images, 3 epochs).
fn sweep_file(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("tiny.toml"),
        r#"
device = "cpu"
[dataset]
name = "synth10"
synth_train = 384
synth_test = 128
[model]
name = "resnet20"
base_width = 4
[train]
epochs = 3
batch_size = 64
[ato]
t_start = 1
t_end = 2
hyper_step = 2
controller_fraction = 0.34
controller_lr = 0.05
lambda = 20.0
[convergence]
every = 3
batches = 2
[bench]
after_run = false
"#,
    )
    .unwrap();
    let sweep = dir.join("sweep.toml");
    std::fs::write(
        &sweep,
        "name = \"tiny\"\nbase = \"tiny.toml\"\n[[grid]]\nmethod = [\"dense\", \"otov2\"]\n[[grid]]\nmethod = \"ato\"\n",
    )
    .unwrap();
    sweep
}

fn sweep_cmd(sweep: &Path, root: &Path, out: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ato"));
    c.args([
        "sweep",
        sweep.to_str().unwrap(),
        &format!("out_dir={}", root.join(out).display()),
        &format!("dataset.root={}", root.join("data").display()),
        "--quiet",
    ]);
    c
}

/// summary.csv without the wall-clock columns.
fn rows_without_time(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let at: Vec<usize> = COLUMNS
        .split(',')
        .enumerate()
        .filter(|(_, c)| matches!(*c, "wall_seconds" | "controller_seconds"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 2);
    text.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| !at.contains(i))
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn a_sweep_writes_its_summary_resumes_after_a_kill_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(dir.path());

    let out = sweep_cmd(&sweep, dir.path(), "whole").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the sweep's last lines: what ATO cost against dense (one seed: no interval)
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.lines()
            .any(|l| l.starts_with("ATO/dense wall time, synth10 resnet20, 50%: ")),
        "{said}"
    );
    let summary = dir.path().join("whole/tiny/summary.csv");
    let text = std::fs::read_to_string(&summary).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], COLUMNS);
    assert_eq!(lines.len(), 4, "one row per run: {text}");
    assert!(
        lines[1..].iter().all(|l| l.contains(",finished,")),
        "{text}"
    );

    // a second invocation skips every finished run
    let again = sweep_cmd(&sweep, dir.path(), "whole").output().unwrap();
    let said = String::from_utf8_lossy(&again.stdout);
    assert_eq!(said.matches("skipped").count(), 3, "{said}");

    // kill the same sweep once the second run has a checkpoint, then run it again
    let mut child = sweep_cmd(&sweep, dir.path(), "killed")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed_dir = dir.path().join("killed/tiny");
    let started = Instant::now();
    let mut killed_mid_sweep = false;
    while started.elapsed() < Duration::from_secs(300) {
        let checkpoints = std::fs::read_dir(&killed_dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().join("checkpoint/state.json").exists())
                    .count()
            })
            .unwrap_or(0);
        if checkpoints >= 2 {
            killed_mid_sweep = child.try_wait().unwrap().is_none();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().ok();
    child.wait().unwrap();
    assert!(killed_mid_sweep, "the sweep was still running when killed");
    let resumed = sweep_cmd(&sweep, dir.path(), "killed").output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        rows_without_time(&killed_dir.join("summary.csv")),
        rows_without_time(&summary),
        "the resumed sweep ends with the same rows"
    );

    // bench.after_run is off in this sweep (its timings would differ between the whole and
    // the resumed sweep): give the rows measured times by hand, 8 ms dense, 4 ms compact
    let text = std::fs::read_to_string(&summary).unwrap();
    let column = |name: &str| COLUMNS.split(',').position(|c| c == name).unwrap();
    let timings = [
        (column("dense_ms"), "8.0"),
        (column("compact_ms"), "4.0"),
        (column("speedup"), "2.0"),
    ];
    let timed: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                return l.to_string();
            }
            let mut cells: Vec<String> = l.split(',').map(String::from).collect();
            for (at, v) in timings {
                assert_eq!(cells[at], "", "no time measured in this sweep: {l}");
                cells[at] = v.into();
            }
            cells.join(",")
        })
        .collect();
    std::fs::write(&summary, timed.join("\n") + "\n").unwrap();

    // the report: Markdown with the main table and PNG plots
    let paper = dir.path().join("paper");
    let report = Command::new(env!("CARGO_BIN_EXE_ato"))
        .args([
            "report",
            dir.path().join("whole/tiny").to_str().unwrap(),
            "--out",
            paper.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(paper.join("tiny.md")).unwrap();
    assert!(
        md.contains("## Main results") && md.contains("| synth10 | resnet20 | 50% | ato |"),
        "{md}"
    );
    // one verdict line per probed run under the convergence figure; OTOv2's is a reference line
    assert_eq!(md.matches("`: convergence checks (").count(), 3, "{md}");
    assert!(md.contains("reference line only"), "{md}");
    let figures: Vec<PathBuf> = std::fs::read_dir(paper.join("figures/tiny"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(md.contains("| 2.00 (8.0→4.0 ms) |"), "speedup column: {md}");
    // ATO's cost against dense: a table row, and one line of output (one seed: no interval)
    assert!(
        md.contains("## ATO's cost") && md.contains("| synth10 | resnet20 | 50% |"),
        "{md}"
    );
    let stdout = String::from_utf8_lossy(&report.stdout);
    let cost: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ATO/dense wall time, synth10 resnet20, 50%: "))
        .collect();
    assert_eq!(cost.len(), 1, "{stdout}");
    assert!(cost[0].contains("(one seed, no interval)"), "{stdout}");
    assert!(
        figures
            .iter()
            .any(|f| f.ends_with("accuracy_vs_speedup_synth10_resnet20.png")),
        "{figures:?}"
    );
    assert!(figures.len() >= 3, "{figures:?}");
    for f in &figures {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(
            &bytes[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is a PNG",
            f.display()
        );
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            md.contains(&format!("figures/tiny/{name}")),
            "{name} is linked"
        );
    }
}
