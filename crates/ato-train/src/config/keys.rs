//! Every configuration key with its default and its documentation, read from the config types
//! themselves (their JSON schema, doc comments included), so `ato train --help` can list them
//! and can never drift from what the parser accepts.

use super::RunConfig;
use serde_json::Value;

/// One configuration key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyDoc {
    /// Dotted key, e.g. `ato.lambda`.
    pub key: String,
    /// The default as TOML would spell it; empty when unset by default.
    pub default: String,
    /// The field's doc comment, on one line.
    pub doc: String,
}

/// Every key of [`RunConfig`], in alphabetical order.
pub fn keys() -> Vec<KeyDoc> {
    let schema = schemars::schema_for!(RunConfig);
    let root = schema.as_value();
    let defs = root.get("$defs").cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk(root, &defs, "", &mut out);
    out
}

fn walk(node: &Value, defs: &Value, prefix: &str, out: &mut Vec<KeyDoc>) {
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, prop) in props {
        let key = format!("{prefix}{name}");
        match section(prop, defs) {
            Some(def) => walk(def, defs, &format!("{key}."), out),
            None => out.push(KeyDoc {
                key,
                default: prop.get("default").map(toml_value).unwrap_or_default(),
                doc: one_line(prop.get("description").and_then(Value::as_str)),
            }),
        }
    }
}

/// The definition a property refers to when it is a section (an object with properties).
fn section<'a>(prop: &'a Value, defs: &'a Value) -> Option<&'a Value> {
    let name = prop.get("$ref")?.as_str()?.strip_prefix("#/$defs/")?;
    let def = defs.get(name)?;
    def.get("properties").is_some().then_some(def)
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn one_line(doc: Option<&str>) -> String {
    doc.unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
