//! Published results placed beside ours where the same (dataset, model, method) row exists.
//! They live in one data file, `paper/published.toml` (sources and caveats in its header),
//! compiled into the binary so `ato report` needs no checkout.

use serde::Deserialize;
use std::sync::OnceLock;

/// One published result.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    pub dataset: String,
    pub model: String,
    pub method: String,
    pub top1: f64,
    /// The unpruned model's top-1 in the same source, when it gives one.
    #[serde(default)]
    pub base_top1: Option<f64>,
    /// FLOPs (conv + fc MACs) reduction in percent.
    pub flops_reduction: f64,
    #[serde(default)]
    pub params_reduction: Option<f64>,
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishedFile {
    result: Vec<Published>,
}

const PUBLISHED_TOML: &str = include_str!("../../../paper/published.toml");

/// Parses the text of a `published.toml`.
fn parse(text: &str) -> Result<Vec<Published>, toml::de::Error> {
    Ok(toml::from_str::<PublishedFile>(text)?.result)
}

/// Every published result of `paper/published.toml`.
pub fn all() -> &'static [Published] {
    static ROWS: OnceLock<Vec<Published>> = OnceLock::new();
    ROWS.get_or_init(|| parse(PUBLISHED_TOML).expect("paper/published.toml parses (tested)"))
}

/// Published rows for a (dataset, model, method).
pub fn matching(dataset: &str, model: &str, method: &str) -> Vec<&'static Published> {
    all()
        .iter()
        .filter(|p| p.dataset == dataset && p.model == model && p.method == method)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_parses_and_is_found_by_row() {
        assert_eq!(all().len(), 9);
        let r50 = matching("imagenet", "resnet50", "ato");
        let tops: Vec<f64> = r50.iter().map(|p| p.top1).collect();
        assert_eq!(tops, [74.68, 75.98, 76.37]);
        assert_eq!(
            matching("cifar10", "resnet56", "ato")[0].base_top1,
            Some(93.53)
        );
        assert!(matching("digits", "resnet20", "ato").is_empty());
    }

    #[test]
    fn an_unknown_key_or_a_missing_number_is_an_error() {
        let row = "dataset = \"d\"\nmodel = \"m\"\nmethod = \"ato\"\nsource = \"s\"\n";
        let ok = format!("[[result]]\n{row}top1 = 1.0\nflops_reduction = 2.0\n");
        assert_eq!(parse(&ok).unwrap().len(), 1);
        assert!(parse(&format!("[[result]]\n{row}top1 = 1.0\n")).is_err());
        assert!(parse(&format!("{ok}colour = \"red\"\n")).is_err());
    }
}
