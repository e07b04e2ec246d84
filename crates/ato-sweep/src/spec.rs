//! Sweep files (`experiments/sweeps/*.toml`) and their expansion into runs.
//!
//! ```toml
//! description = "what this sweep is for"
//! base = "../synth10_resnet20.toml"   # a run config, relative to this file (optional)
//! [set]                               # keys every run gets
//! train.epochs = 8
//! [[grid]]                            # a cartesian product over every listed key
//! method = ["dense", "oto", "otov2"]
//! [[grid]]
//! method = "ato"                      # a single value needs no list
//! ato.lambda = [5.0, 20.0]
//! ato.gamma = [2.0, 8.0]
//! ```
//!
//! A grid may carry its own `base`. The sweep is the union of its grids, in file order, with
//! duplicate runs (same run id) kept once; a sweep without grids is its base alone.
//!
//! Optional top-level keys:
//! - `seeds = [0, 1, 2]`: every run once per seed (the report averages over them);
//! - `[per_method.oto]` (any method): keys for that method's runs only, after `[set]` and
//!   before the grid point, e.g. `optim.momentum = 0.0` where the authors ran without momentum;
//! - `match_flops = true`: put every baseline at the FLOPs reduction of the sweep's ATO runs
//!   ([`super::calibrate`]), with `pilot_epochs` (default: the run's epochs), `max_pilots`
//!   (default 12, at least 1) and `match_tolerance` (default 0.01 = ±1 point, in (0, 0.05])
//!   for the search.

use anyhow::{anyhow, bail, Context, Result};
use figment::value::Value;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A parsed sweep file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The results folder name [default: the file stem].
    pub name: Option<String>,
    pub description: Option<String>,
    pub base: Option<String>,
    #[serde(default)]
    pub set: toml::Table,
    #[serde(default)]
    pub grid: Vec<toml::Table>,
    /// Every run once per seed.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Keys for one method's runs only, by method name.
    #[serde(default)]
    pub per_method: std::collections::BTreeMap<String, toml::Table>,
    /// Match every baseline's FLOPs reduction to the reference by a knob search.
    #[serde(default)]
    pub match_flops: bool,
    /// Epochs of a pilot run of the search [default: the run's own].
    pub pilot_epochs: Option<usize>,
    /// Most pilot runs per search [default: 12].
    pub max_pilots: Option<usize>,
    /// How close a pilot must land to the reference [default: 0.01, one point].
    pub match_tolerance: Option<f64>,
}

/// One run before layering: its base file and the sweep's values for it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub base: Option<PathBuf>,
    /// `set` values, then this grid point's values, as (dotted key, value).
    pub values: Vec<(String, Value)>,
    /// The grid point alone (what distinguishes this run), for listings.
    pub point: Vec<(String, String)>,
    /// How many of `values` come from `[set]` (per-method keys go after them).
    pub set_len: usize,
}

/// A sweep: its name, where it came from, and its runs.
#[derive(Debug)]
pub struct Sweep {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    pub runs: Vec<RunSpec>,
    /// `[per_method.NAME]` keys, by method name.
    pub per_method: std::collections::BTreeMap<String, Vec<(String, Value)>>,
    pub match_flops: bool,
    pub pilot_epochs: Option<usize>,
    pub max_pilots: Option<usize>,
    pub match_tolerance: Option<f64>,
}

/// Finds a sweep by file path, or by name in `experiments/sweeps/`.
pub fn locate(name_or_file: &str) -> Result<PathBuf> {
    let p = Path::new(name_or_file);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    let dir = Path::new("experiments/sweeps");
    let candidate = dir.join(format!("{name_or_file}.toml"));
    if candidate.is_file() {
        return Ok(candidate);
    }
    let known: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            let mut v: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    if p.extension()? != "toml" {
                        return None;
                    }
                    Some(p.file_stem()?.to_string_lossy().into_owned())
                })
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    if known.is_empty() {
        bail!("no sweep `{name_or_file}`: not a file, and experiments/sweeps/ is not here (run from the repository root)")
    }
    bail!(
        "no sweep `{name_or_file}` (known: {}; or give a path to a sweep file)",
        known.join(", ")
    )
}

/// Flattens nested tables into `(dotted key, value)` pairs, in key order.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => out.push((key, other.clone())),
        }
    }
}

fn to_figment(v: &toml::Value, key: &str) -> Result<Value> {
    v.clone()
        .try_into::<Value>()
        .map_err(|e| anyhow!("sweep key `{key}`: {e}"))
}

fn resolve(file: &Path, base: &str) -> PathBuf {
    file.parent().unwrap_or(Path::new(".")).join(base)
}

/// Reads and expands a sweep file.
pub fn load(path: &Path) -> Result<Sweep> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: SweepFile = toml::from_str(&text).map_err(|e| {
        anyhow!(
            "sweep {}: {}",
            path.display(),
            e.message().replace('\n', " ")
        )
    })?;
    if file.max_pilots == Some(0) || file.pilot_epochs == Some(0) {
        bail!(
            "sweep {}: `max_pilots` and `pilot_epochs` must be at least 1",
            path.display()
        );
    }
    if let Some(t) = file.match_tolerance {
        if !(t > 0.0 && t <= 0.05) {
            bail!(
                "sweep {}: `match_tolerance` = {t} is outside (0, 0.05] (a share of the FLOPs: 0.01 is ±1 point)",
                path.display()
            );
        }
    }
    let mut set = Vec::new();
    flatten("", &file.set, &mut set);
    let set: Vec<(String, Value)> = set
        .iter()
        .map(|(k, v)| Ok((k.clone(), to_figment(v, k)?)))
        .collect::<Result<_>>()?;
    let top_base = file.base.as_deref().map(|b| resolve(path, b));
    let grids = if file.grid.is_empty() {
        vec![toml::Table::new()]
    } else {
        file.grid.clone()
    };
    let mut runs = Vec::new();
    for (gi, grid) in grids.iter().enumerate() {
        let mut grid = grid.clone();
        let base = match grid.remove("base") {
            Some(toml::Value::String(b)) => Some(resolve(path, &b)),
            Some(_) => bail!(
                "sweep {}: grid {} has a `base` that is not a string",
                path.display(),
                gi + 1
            ),
            None => top_base.clone(),
        };
        if let Some(b) = &base {
            if !b.is_file() {
                bail!(
                    "sweep {}: base config {} does not exist",
                    path.display(),
                    b.display()
                );
            }
        }
        let mut axes = Vec::new();
        flatten("", &grid, &mut axes);
        let axes: Vec<(String, Vec<toml::Value>)> = axes
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::Array(a) if a.is_empty() => {
                    Err(anyhow!("sweep {}: `{k}` lists no values", path.display()))
                }
                toml::Value::Array(a) => Ok((k, a)),
                single => Ok((k, vec![single])),
            })
            .collect::<Result<_>>()?;
        for point in cartesian(&axes) {
            let mut values = set.clone();
            let mut shown = Vec::new();
            for (k, v) in point {
                values.push((k.clone(), to_figment(&v, &k)?));
                shown.push((k, display(&v)));
            }
            let seeds: Vec<Option<u64>> = if file.seeds.is_empty() {
                vec![None]
            } else {
                file.seeds.iter().copied().map(Some).collect()
            };
            for seed in seeds {
                let (mut values, mut shown) = (values.clone(), shown.clone());
                if let Some(s) = seed {
                    values.push(("seed".into(), Value::from(s)));
                    shown.push(("seed".into(), s.to_string()));
                }
                runs.push(RunSpec {
                    base: base.clone(),
                    values,
                    point: shown,
                    set_len: set.len(),
                });
            }
        }
    }
    let name = file.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into())
    });
    let mut per_method = std::collections::BTreeMap::new();
    for (method, table) in &file.per_method {
        if serde_json::from_value::<ato_train::Method>(method.as_str().into()).is_err() {
            bail!(
                "sweep {}: [per_method.{method}] names no method (dense, ato, oto, otov2, hesso, magnitude)",
                path.display()
            );
        }
        let mut pairs = Vec::new();
        flatten("", table, &mut pairs);
        let pairs: Vec<(String, Value)> = pairs
            .iter()
            .map(|(k, v)| Ok((k.clone(), to_figment(v, k)?)))
            .collect::<Result<_>>()?;
        per_method.insert(method.clone(), pairs);
    }
    Ok(Sweep {
        name,
        description: file.description.unwrap_or_default(),
        path: path.to_path_buf(),
        runs,
        per_method,
        match_flops: file.match_flops,
        pilot_epochs: file.pilot_epochs,
        max_pilots: file.max_pilots,
        match_tolerance: file.match_tolerance,
    })
}

fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every combination of one value per axis, the first axis varying slowest.
fn cartesian(axes: &[(String, Vec<toml::Value>)]) -> Vec<Vec<(String, toml::Value)>> {
    let mut out: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
    for (k, values) in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((k.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    out
}
