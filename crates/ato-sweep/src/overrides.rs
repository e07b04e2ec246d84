//! `key=value` command-line overrides merged into a figment (dotted keys, TOML-like values).

use anyhow::{bail, Context, Result};
use figment::value::Value;
use figment::Figment;

/// Parses a command-line or environment value: numbers (including exponents such as `5e-4`,
/// which figment alone reads as strings), booleans, arrays `[1,2]`, otherwise a string.
pub fn parse_value(text: &str) -> Result<Value> {
    let text = text.trim();
    let numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if numeric && text.parse::<i64>().is_err() {
        if let Ok(x) = text.parse::<f64>() {
            return Ok(Value::from(x));
        }
    }
    text.parse()
        .map_err(|e| anyhow::anyhow!("cannot parse the value `{text}`: {e:?}"))
}

/// Merges each `key=value` argument into `fig` as a dotted key; values parse with
/// [`parse_value`].
pub fn merge_overrides(mut fig: Figment, args: &[String]) -> Result<Figment> {
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            bail!("argument `{arg}` is not of the form key=value");
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            bail!("argument `{arg}` has an empty key");
        }
        let value = parse_value(value).with_context(|| format!("argument `{arg}`"))?;
        fig = fig.merge((key, value));
    }
    Ok(fig)
}
