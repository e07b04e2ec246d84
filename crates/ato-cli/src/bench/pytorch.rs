//! PyTorch beside `ato bench`: `--pytorch` runs `benches/pytorch_reference.py` for the same
//! model, mode, data set, batch, threads and device, its steps alternating with ours in blocks
//! ([`PytorchSteps`]), and gives a same-run ratio of the two medians; the
//! stored results file is only ever shown as "stored, <date>, <machine>", never as a ratio.

use super::{BenchArgs, BenchMode};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A PyTorch figure read from the stored results file (another day, maybe another machine).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredPytorch {
    pub images_per_second: f64,
    /// "stored, <date>, <machine>".
    pub label: String,
}

/// The python that runs the reference: `ATO_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("ATO_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn mode_name(mode: BenchMode) -> &'static str {
    match mode {
        BenchMode::Train => "train",
        BenchMode::Infer => "infer",
    }
}

/// `benches/<file>` from the working directory, else from the source tree.
fn benches_file(file: &str) -> PathBuf {
    let here = Path::new("benches").join(file);
    if here.is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches")
        .join(file)
}

/// Whether `python` can import torch; `Err` holds one line saying why not.
pub fn torch_available(python: &str) -> Result<String, String> {
    let out = Command::new(python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .map_err(|e| format!("cannot run `{python}` ({e})"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Err(format!(
        "`{python}` cannot import torch ({})",
        last.unwrap_or("no error text").trim()
    ))
}

/// The python to use for `--pytorch`, or the one-line reason it cannot run.
pub fn require_torch() -> Result<String> {
    let python = python();
    if let Err(why) = torch_available(&python) {
        bail!(
            "--pytorch: {why}; install PyTorch (`pip install torch`) or set ATO_PYTHON to a python that has it"
        );
    }
    Ok(python)
}

/// The reference script in `--serve` mode for exactly these settings: after its warm-up it
/// times one PyTorch step whenever asked, so `ato bench --pytorch` alternates blocks of its
/// own steps with blocks of PyTorch's, and both see the same stretch of a shared machine.
pub struct PytorchSteps {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    /// The script's stderr, read back for the one-line error when it stops.
    stderr: PathBuf,
}

impl PytorchSteps {
    /// Starts the script and waits for its warm-up to end.
    pub fn start(args: &BenchArgs, threads: usize) -> Result<Self> {
        let python = require_torch()?;
        let script = benches_file("pytorch_reference.py");
        let stderr = std::env::temp_dir().join(format!("ato-pytorch-{}.err", std::process::id()));
        let err_file = std::fs::File::create(&stderr)
            .with_context(|| format!("--pytorch: creating {}", stderr.display()))?;
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--models", &args.model, "--modes", mode_name(args.mode)])
            .args(["--dataset", args.dataset.as_str()])
            .args(["--batch", &args.batch.to_string()])
            .args(["--warmup", &args.warmup.to_string()])
            .args(["--threads", &threads.to_string()])
            .args(["--device", torch_device(&args.device)])
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err_file)
            .spawn()
            .with_context(|| format!("running {} {}", python, script.display()))?;
        let stdin = child.stdin.take().context("--pytorch: no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("--pytorch: no stdout")?);
        let mut steps = Self {
            child,
            stdin,
            stdout,
            stderr,
        };
        let first = steps.line()?;
        if first != "ready" {
            bail!(
                "--pytorch: {} said {first:?} instead of ready",
                script.display()
            );
        }
        Ok(steps)
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .context("--pytorch: reading the reference script's output")?;
        if n == 0 {
            return Err(self.stopped());
        }
        Ok(line.trim().to_string())
    }

    /// One line: the script's exit status and the last line it wrote to stderr.
    fn stopped(&mut self) -> anyhow::Error {
        let status = self
            .child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        anyhow::anyhow!(
            "--pytorch: the reference script stopped ({status}: {})",
            last.unwrap_or("no error text").trim()
        )
    }

    /// Times one PyTorch step: its seconds.
    pub fn step(&mut self) -> Result<f64> {
        if writeln!(self.stdin, "step")
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Err(self.stopped());
        }
        let line = self.line()?;
        line.parse()
            .with_context(|| format!("--pytorch: {line:?} is not a step time"))
    }
}

impl Drop for PytorchSteps {
    fn drop(&mut self) {
        // Its measurements are read: the script is stopped, and reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// The torch device string for an `ato` device name (`cuda:1` stays `cuda:1`).
fn torch_device(device: &str) -> &str {
    if device == "auto" {
        "cpu"
    } else {
        device
    }
}

/// The stored figure for these settings (same thread count preferred), if the file has one.
pub fn find_stored(args: &BenchArgs, threads: usize) -> Result<Option<StoredPytorch>> {
    let path = match &args.reference {
        Some(p) if p.is_file() => p.clone(),
        Some(p) => bail!("reference file {} not found", p.display()),
        None => benches_file("pytorch_reference_results.json"),
    };
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(stored_entry(&doc, args, threads))
}

/// The matching entry of a stored results document, labelled with its date and machine.
pub fn stored_entry(
    doc: &serde_json::Value,
    args: &BenchArgs,
    threads: usize,
) -> Option<StoredPytorch> {
    let results: &[serde_json::Value] = doc["results"].as_array().map_or(&[], |a| a.as_slice());
    let matches: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| {
            r["model"].as_str() == Some(args.model.as_str())
                && r["mode"].as_str() == Some(mode_name(args.mode))
                && r["batch"].as_u64() == Some(args.batch as u64)
                && r["dataset"].as_str().unwrap_or("cifar10") == args.dataset.as_str()
                && r["device"].as_str().unwrap_or("cpu") == torch_device(&args.device)
        })
        .collect();
    let best = matches
        .iter()
        .find(|r| r["threads"].as_u64() == Some(threads as u64))
        .or(matches.first())?;
    Some(StoredPytorch {
        images_per_second: best["images_per_second"].as_f64()?,
        label: format!(
            "stored, {}, {}",
            doc["date"].as_str().unwrap_or("date unknown"),
            doc["machine"].as_str().unwrap_or("machine unknown")
        ),
    })
}

/// The PyTorch line of the text output: a ratio only for a same-run measurement.
pub fn pytorch_line(ours: f64, same_run: Option<f64>, stored: Option<&StoredPytorch>) -> String {
    match (same_run, stored) {
        (Some(pt), _) => format!(
            "PyTorch (same run): {pt:.1} images/s, ratio {:.2}x",
            ours / pt
        ),
        (None, Some(s)) => format!(
            "PyTorch reference ({}): {:.1} images/s; not measured in this run, no ratio (--pytorch measures it now)",
            s.label, s.images_per_second
        ),
        (None, None) => {
            "no PyTorch figure (--pytorch measures one now with benches/pytorch_reference.py)"
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ato_data::DatasetName;

    fn args(model: &str) -> BenchArgs {
        BenchArgs {
            mode: BenchMode::Train,
            model: model.to_string(),
            batch: 128,
            iters: 1,
            warmup: 0,
            backend: None,
            reproducible: ato_kernels::Reproducibility::Machine,
            dataset: DatasetName::Cifar10,
            device: "cpu".to_string(),
            pytorch: true,
            reference: None,
            json: false,
            profile: false,
        }
    }

    /// A stand-in python: `-c ...` answers like python does with or without torch; a script
    /// run (`--serve`) says `ready`, then 1.28 s per `step` line (100 images/s at batch 128).
    fn fake_python(dir: &Path, has_torch: bool) -> PathBuf {
        let path = dir.join(if has_torch {
            "python-torch"
        } else {
            "python-bare"
        });
        let import = if has_torch {
            "echo 2.0-fake; exit 0"
        } else {
            "echo \"ModuleNotFoundError: No module named 'torch'\" >&2; exit 1"
        };
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = -c ]; then {import}; fi\necho ready\nwhile read line; do echo 1.28; done\n"
        );
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn stored_reference_is_labelled_with_date_and_machine_and_never_gives_a_ratio() {
        let doc = serde_json::json!({
            "date": "2026-11-25", "machine": "EPYC, 2 cores",
            "results": [
                {"model": "resnet56", "mode": "train", "dataset": "cifar10", "batch": 128,
                 "threads": 4, "images_per_second": 50.0},
                {"model": "resnet56", "mode": "train", "dataset": "cifar10", "batch": 128,
                 "threads": 2, "images_per_second": 80.0},
                {"model": "resnet56", "mode": "infer", "dataset": "cifar10", "batch": 128,
                 "threads": 2, "images_per_second": 999.0}
            ]
        });
        let stored = stored_entry(&doc, &args("resnet56"), 2).unwrap();
        assert_eq!(stored.images_per_second, 80.0);
        assert_eq!(stored.label, "stored, 2026-11-25, EPYC, 2 cores");
        let line = pytorch_line(40.0, None, Some(&stored));
        assert!(line.contains("(stored, 2026-11-25, EPYC, 2 cores): 80.0 images/s"));
        assert!(line.contains("no ratio"), "{line}");
        assert!(!line.contains("0.50x"), "{line}");
        // A same-run figure is the only source of a ratio: 40 / 80 = 0.50.
        let measured = pytorch_line(40.0, Some(80.0), Some(&stored));
        assert_eq!(measured, "PyTorch (same run): 80.0 images/s, ratio 0.50x");
        assert!(stored_entry(&doc, &args("resnet20"), 2).is_none());
        let mut on_gpu = args("resnet56");
        on_gpu.device = "cuda".into();
        assert!(
            stored_entry(&doc, &on_gpu, 2).is_none(),
            "CPU figures are not GPU figures"
        );
    }

    #[test]
    fn pytorch_without_torch_is_one_clear_error_and_with_torch_gives_the_same_run_figure() {
        let dir = tempfile::tempdir().unwrap();
        let without = fake_python(dir.path(), false);
        let why = torch_available(without.to_str().unwrap()).unwrap_err();
        assert!(
            why.contains("cannot import torch (ModuleNotFoundError: No module named 'torch')"),
            "{why}"
        );
        let with = fake_python(dir.path(), true);
        assert_eq!(torch_available(with.to_str().unwrap()).unwrap(), "2.0-fake");
        // PytorchSteps reads ATO_PYTHON; this is the only test in the binary that sets it.
        std::env::set_var("ATO_PYTHON", &without);
        let err = PytorchSteps::start(&args("resnet20"), 2)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("--pytorch: `"), "{err}");
        assert!(err.contains("install PyTorch"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        std::env::set_var("ATO_PYTHON", &with);
        let mut steps = PytorchSteps::start(&args("resnet20"), 2).unwrap();
        assert_eq!(steps.step().unwrap(), 1.28);
        assert_eq!(steps.step().unwrap(), 1.28);
        drop(steps);
        // a script that fails in its warm-up: one line with its status and last error line
        let dies = dir.path().join("python-dies");
        std::fs::write(
            &dies,
            "#!/bin/sh\nif [ \"$1\" = -c ]; then echo 2.0-fake; exit 0; fi\n\
             echo 'Traceback (most recent call last):' >&2\necho 'RuntimeError: boom' >&2\nexit 3\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dies, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::env::set_var("ATO_PYTHON", &dies);
        let err = PytorchSteps::start(&args("resnet20"), 2)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "--pytorch: the reference script stopped (exit status: 3: RuntimeError: boom)"
        );
        std::env::remove_var("ATO_PYTHON");
    }
}
