//! A tiny matched-FLOPs sweep through the binary, over two seeds: the ATO runs go first, OTO's
//! λ is searched with pilot runs, HESSO and magnitude take the reference by construction, the
//! search is cached (a second sweep runs nothing), and the report shows n, mean ± std and the
//! gap to the reference. The runs are portable (`train.reproducible`), so their numbers — and
//! whether two seeds' differences happen to tie, which leaves no spread to test — are the same
//! on every CPU and under any machine-mode kernel.

use std::path::Path;
use std::process::Command;

fn write_sweep(dir: &Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("tiny.toml"),
        r#"
device = "cpu"
[dataset]
name = "synth10"
synth_train = 384
synth_test = 64
[model]
name = "resnet20"
base_width = 4
[train]
epochs = 4
batch_size = 64
reproducible = "portable"
[optim]
name = "sgd"
lr = 0.1
[ato]
t_start = 1
t_prox = 2
t_end = 3
hyper_step = 2
controller_fraction = 0.25
controller_lr = 0.05
lambda = 20.0
gamma = 4.0
[oto]
lambda = 1.0
n_p = 2
[hesso]
periods = 2
[convergence]
every = 0
"#,
    )
    .unwrap();
    let sweep = dir.join("sweep.toml");
    std::fs::write(
        &sweep,
        "name = \"matched\"\nbase = \"tiny.toml\"\nmatch_flops = true\nmax_pilots = 2\nseeds = [0, 1]\n\
         [per_method.oto]\noptim.momentum = 0.0\n\
         [[grid]]\nmethod = [\"dense\", \"ato\", \"oto\", \"hesso\", \"magnitude\"]\n",
    )
    .unwrap();
    sweep
}

fn ato(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ato"))
        .args(args)
        .output()
        .unwrap()
}

fn run_folders(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count()
}

#[test]
fn a_matched_sweep_caches_its_search_and_reports_the_gap_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path());
    let out_dir = format!("out_dir={}", dir.path().join("out").display());
    let data = format!("dataset.root={}", dir.path().join("data").display());
    let args = ["sweep", sweep.to_str().unwrap(), &out_dir, &data, "--quiet"];
    let first = ato(&args);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // the references come first, side by side with dense seed by seed: dense s0, ATO s0,
    // dense s1, ATO s1 (each run prints a start and an end line), then the baselines
    let order: Vec<&str> = said.lines().filter(|l| l.starts_with("[")).collect();
    for (line, (method, seed)) in
        order
            .iter()
            .step_by(2)
            .zip([("dense", 0), ("ato", 0), ("dense", 1), ("ato", 1)])
    {
        assert!(
            line.contains(&format!(" {method}-")) && line.contains(&format!("seed={seed}")),
            "{said}"
        );
    }
    let results = dir.path().join("out/matched");
    let cache = std::fs::read_to_string(results.join("calibration.csv")).unwrap();
    assert!(cache.starts_with("method,key,knob,value,achieved,reference,status,pilots"));
    assert!(
        cache.contains("oto,") && cache.contains(",oto.lambda,"),
        "{cache}"
    );
    assert!(
        cache.contains("hesso,") && cache.contains(",by_construction,0"),
        "{cache}"
    );
    let summary = std::fs::read_to_string(results.join("summary.csv")).unwrap();
    assert_eq!(
        summary.lines().count(),
        1 + 10,
        "5 methods × 2 seeds:\n{summary}"
    );
    // OTO runs without momentum, per [per_method.oto]
    let oto_dir = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("oto-"))
        .unwrap();
    let config = std::fs::read_to_string(oto_dir.join("config.toml")).unwrap();
    assert!(config.contains("momentum = 0.0"), "{config}");
    let folders = run_folders(&results);

    // the second sweep: the cache answers, every run is skipped, no new folder
    let second = ato(&args);
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{said}");
    assert_eq!(
        said.matches("finished earlier, skipped").count(),
        10,
        "{said}"
    );
    assert_eq!(
        run_folders(&results),
        folders,
        "no pilot run the second time"
    );

    let paper = dir.path().join("paper");
    let report = ato(&[
        "report",
        results.to_str().unwrap(),
        "--out",
        paper.to_str().unwrap(),
    ]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(paper.join("matched.md")).unwrap();
    let row = |m: &str| {
        md.lines()
            .find(|l| l.starts_with("| synth10 | resnet20 | ") && l.contains(&format!(" | {m} | ")))
            .unwrap_or_else(|| panic!("no {m} row:\n{md}"))
            .to_string()
    };
    assert!(
        row("ato").contains("| 2 | ") && row("ato").contains(" ± "),
        "{}",
        row("ato")
    );
    assert!(row("ato").contains("| reference |"), "{}", row("ato"));
    for m in ["oto", "hesso", "magnitude"] {
        let r = row(m);
        assert!(r.contains("matched (") || r.contains("gap "), "{r}");
        // paired with ATO over both seeds: a difference with its interval and a verdict
        assert!(r.contains(" | 50% | ") && r.contains(" | 2 | "), "{r}");
        assert!(
            ["better", "worse", "indistinguishable"]
                .iter()
                .any(|w| r.contains(&format!("| {w}"))),
            "{r}"
        );
    }
}

#[test]
fn every_baseline_names_the_ato_run_of_its_own_seed() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path());
    let out_dir = format!("out_dir={}", dir.path().join("out").display());
    let data = format!("dataset.root={}", dir.path().join("data").display());
    let out = ato(&["sweep", sweep.to_str().unwrap(), &out_dir, &data, "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_path(dir.path().join("out/matched/summary.csv")).unwrap();
    let rows: Vec<std::collections::HashMap<String, String>> =
        reader.deserialize().map(|r| r.unwrap()).collect();
    let ato_of_seed = |seed: &str| {
        rows.iter()
            .find(|r| r["method"] == "ato" && r["seed"] == seed)
            .unwrap()["run_id"]
            .clone()
    };
    let mut checked = 0;
    for r in &rows {
        match r["method"].as_str() {
            "dense" | "ato" => assert_eq!(r["reference_run"], "", "{r:?}"),
            _ => {
                assert_eq!(r["reference_run"], ato_of_seed(&r["seed"]), "{r:?}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6, "3 baselines × 2 seeds");
}
