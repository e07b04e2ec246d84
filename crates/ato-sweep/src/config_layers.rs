//! Config layering (docs/design.md §7): built-in defaults < a TOML file (`experiments/*.toml`)
//! < sweep values < `ATO_*` environment variables < `key=value` arguments.
//!
//! Environment variables use `__` between a section and its key, `ATO_TRAIN__EPOCHS=2` for
//! `train.epochs = 2`; top-level keys are written directly (`ATO_SEED=3`). Other `ATO_*`
//! variables (e.g. `ATO_BACKEND`, read by the kernels) are not config keys and are ignored.

use crate::overrides::{merge_overrides, parse_value};
use anyhow::{anyhow, Context, Result};
use ato_train::RunConfig;
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;
use std::path::Path;

/// Top-level keys an `ATO_*` variable may set without a section.
const TOP_LEVEL: [&str; 5] = ["name", "method", "seed", "device", "out_dir"];

/// The `ATO_*` environment as `(dotted key, value)` pairs, values parsed like `key=value`
/// arguments.
fn environment() -> Result<Vec<(String, Value)>> {
    let mut pairs = Vec::new();
    for (name, value) in std::env::vars() {
        let Some(rest) = name.strip_prefix("ATO_") else {
            continue;
        };
        let k = rest.to_ascii_lowercase();
        let key = if k.contains("__") {
            k.replace("__", ".")
        } else if TOP_LEVEL.contains(&k.as_str()) {
            k
        } else {
            continue;
        };
        let value = parse_value(&value).with_context(|| format!("environment variable {name}"))?;
        pairs.push((key, value));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(pairs)
}

/// Defaults, then `file` (if any), then the `(dotted key, value)` pairs of `values` in order.
pub fn base(file: Option<&Path>, values: &[(String, Value)]) -> Result<Figment> {
    let mut fig = Figment::new().merge(Serialized::defaults(RunConfig::default()));
    if let Some(f) = file {
        if !f.is_file() {
            return Err(anyhow!("config file {} does not exist", f.display()));
        }
        fig = fig.merge(Toml::file_exact(f));
    }
    for (k, v) in values {
        fig = fig.merge((k.as_str(), v.clone()));
    }
    Ok(fig)
}

/// The environment and the command-line `key=value` arguments on top of `fig`.
pub fn finish(mut fig: Figment, overrides: &[String]) -> Result<Figment> {
    for (key, value) in environment()? {
        fig = fig.merge((key.as_str(), value));
    }
    merge_overrides(fig, overrides)
}

/// The merged, validated configuration; every problem is one line naming the key.
pub fn extract(fig: &Figment) -> Result<RunConfig> {
    let cfg: RunConfig = fig.extract().map_err(|e| anyhow!(one_line(&e)))?;
    cfg.validate()?;
    Ok(cfg)
}

/// A figment error as one line: "config: <what> (key `<path>`, from <source>)".
fn one_line(e: &figment::Error) -> String {
    let mut out = format!("invalid config: {}", e.kind);
    if !e.path.is_empty() {
        out += &format!(" (key `{}`", e.path.join("."));
        if let Some(figment::Source::File(f)) = e.metadata.as_ref().and_then(|m| m.source.as_ref())
        {
            out += &format!(", in {}", f.display());
        }
        out += ")";
    }
    out.replace('\n', " ")
}

/// `cfg` as the TOML a run folder stores, for `--print-config`.
pub fn to_toml(cfg: &RunConfig) -> String {
    cfg.to_toml()
}
