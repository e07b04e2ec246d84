//! `key=value` command-line overrides merged into a figment (dotted keys, TOML-like values).

use anyhow::{bail, Context, Result};
use figment::value::Value;
use figment::Figment;

/// Merges each `key=value` argument into `fig` as a dotted key; values parse as figment
/// values (numbers, booleans, arrays `[1,2]`, otherwise strings).
pub fn merge_overrides(mut fig: Figment, args: &[String]) -> Result<Figment> {
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            bail!("argument `{arg}` is not of the form key=value");
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            bail!("argument `{arg}` has an empty key");
        }
        let value: Value = value
            .trim()
            .parse()
            .with_context(|| format!("argument `{arg}`: cannot parse the value"))?;
        fig = fig.merge((key, value));
    }
    Ok(fig)
}
