//! The knob a matched baseline is put at its ATO run's FLOPs reduction by
//! (docs/matched-flops.md): OTO's λ and OTOv2's (or HESSO's group-count) target are searched
//! with pilot runs; HESSO's and magnitude's FLOPs target is set to the reference by
//! construction. The sweep's search, its cache key and the summary row read and write the knob
//! here, and nowhere else.

use super::{Method, RunConfig};

/// The range a searched knob moves in: a log scale (λ) or a linear one (a share), within
/// [lo, hi].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KnobRange {
    pub log: bool,
    pub lo: f64,
    pub hi: f64,
}

/// OTO's λ.
pub const LAMBDA_RANGE: KnobRange = KnobRange {
    log: true,
    lo: 1e-6,
    hi: 1e3,
};

/// A group-sparsity share (OTOv2's target, HESSO's group-count target).
pub const SHARE_RANGE: KnobRange = KnobRange {
    log: false,
    lo: 0.01,
    hi: 0.95,
};

/// A run's matched knob: its config key, and the range it is searched in (`None`: it is set
/// to the reference by construction).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatchedKnob {
    pub key: &'static str,
    pub search: Option<KnobRange>,
}

impl RunConfig {
    /// The knob this run is matched by; `None` for dense and ATO.
    pub fn matched_knob(&self) -> Option<MatchedKnob> {
        let (key, search) = match self.method {
            Method::Oto => ("oto.lambda", Some(LAMBDA_RANGE)),
            Method::Otov2 => ("otov2.target_group_sparsity", Some(SHARE_RANGE)),
            // the reference's group-count target is searched like OTOv2's
            Method::Hesso if self.hesso.target_group_sparsity.is_some() => {
                ("hesso.target_group_sparsity", Some(SHARE_RANGE))
            }
            Method::Hesso | Method::Magnitude => ("prune.target_flops_reduction", None),
            Method::Dense | Method::Ato => return None,
        };
        Some(MatchedKnob { key, search })
    }

    /// The matched knob's value (the FLOPs target for a run without one).
    pub fn knob_value(&self) -> f64 {
        match (self.method, self.hesso.target_group_sparsity) {
            (Method::Oto, _) => self.oto.lambda,
            (Method::Otov2, _) => self.otov2.target_group_sparsity,
            (Method::Hesso, Some(share)) => share,
            _ => self.prune.target_flops_reduction,
        }
    }

    /// Sets the matched knob (the FLOPs target for a run without one).
    pub fn set_knob_value(&mut self, v: f64) {
        match (self.method, self.hesso.target_group_sparsity) {
            (Method::Oto, _) => self.oto.lambda = v,
            (Method::Otov2, _) => self.otov2.target_group_sparsity = v,
            (Method::Hesso, Some(_)) => self.hesso.target_group_sparsity = Some(v),
            _ => self.prune.target_flops_reduction = v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(method: Method) -> RunConfig {
        RunConfig {
            method,
            ..RunConfig::default()
        }
    }

    #[test]
    fn each_method_names_its_knob_and_sets_only_that_value() {
        let mut oto = cfg(Method::Oto);
        let k = oto.matched_knob().unwrap();
        assert_eq!((k.key, k.search), ("oto.lambda", Some(LAMBDA_RANGE)));
        oto.set_knob_value(0.2);
        assert_eq!((oto.oto.lambda, oto.knob_value()), (0.2, 0.2));
        assert_eq!(oto.prune.target_flops_reduction, 0.5);

        let mut hesso = cfg(Method::Hesso);
        assert_eq!(hesso.matched_knob().unwrap().search, None);
        hesso.set_knob_value(0.47);
        assert_eq!(hesso.prune.target_flops_reduction, 0.47);
        // the reference's group-count target is searched like OTOv2's
        hesso.hesso.target_group_sparsity = Some(0.5);
        let k = hesso.matched_knob().unwrap();
        assert_eq!(
            (k.key, k.search),
            ("hesso.target_group_sparsity", Some(SHARE_RANGE))
        );
        hesso.set_knob_value(0.6);
        assert_eq!(hesso.hesso.target_group_sparsity, Some(0.6));
        assert_eq!(hesso.prune.target_flops_reduction, 0.47);

        let otov2 = cfg(Method::Otov2);
        assert_eq!(
            otov2.matched_knob().unwrap().key,
            "otov2.target_group_sparsity"
        );
        assert!(cfg(Method::Dense).matched_knob().is_none());
        assert!(cfg(Method::Ato).matched_knob().is_none());
    }
}
