//! [`RunConfig::validate`]: every out-of-range value becomes one line naming the key and the
//! allowed range.

use super::RunConfig;
use crate::TrainError;

fn invalid(key: &str, why: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("{key}: {why}"))
}

fn check(
    ok: bool,
    key: &str,
    value: impl std::fmt::Display,
    range: &str,
) -> Result<(), TrainError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, format!("{value} is outside {range}")))
    }
}

impl RunConfig {
    /// Rejects values no run can use; the error names the key and the allowed range.
    pub fn validate(&self) -> Result<(), TrainError> {
        let t = &self.train;
        check(t.epochs >= 1, "train.epochs", t.epochs, "[1, ∞)")?;
        check(
            t.batch_size >= 1,
            "train.batch_size",
            t.batch_size,
            "[1, ∞)",
        )?;
        check(
            (0.0..1.0).contains(&t.label_smoothing),
            "train.label_smoothing",
            t.label_smoothing,
            "[0, 1)",
        )?;
        check(
            t.mixup >= 0.0 && t.mixup.is_finite(),
            "train.mixup",
            t.mixup,
            "[0, ∞)",
        )?;
        let ranks = self.dist.world_size;
        check(ranks >= 1, "dist.world_size", ranks, "[1, ∞)")?;
        if !t.batch_size.is_multiple_of(ranks) {
            return Err(invalid(
                "dist.world_size",
                format!(
                    "{ranks} ranks do not divide train.batch_size = {} into equal shards",
                    t.batch_size
                ),
            ));
        }
        let o = &self.optim;
        check(o.lr > 0.0 && o.lr.is_finite(), "optim.lr", o.lr, "(0, ∞)")?;
        check(
            (0.0..1.0).contains(&o.momentum),
            "optim.momentum",
            o.momentum,
            "[0, 1)",
        )?;
        if o.nesterov && o.name == super::OptimizerName::Adamw {
            return Err(invalid(
                "optim.nesterov",
                "Nesterov momentum is an SGD option; set it to false for adamw",
            ));
        }
        if o.nesterov && o.name == super::OptimizerName::Sgd && o.momentum == 0.0 {
            return Err(invalid(
                "optim.nesterov",
                "Nesterov needs momentum > 0; with optim.momentum = 0 set optim.nesterov = false",
            ));
        }
        check(
            o.weight_decay >= 0.0 && o.weight_decay.is_finite(),
            "optim.weight_decay",
            o.weight_decay,
            "[0, ∞)",
        )?;
        check(
            o.warmup_epochs <= t.epochs,
            "optim.warmup_epochs",
            o.warmup_epochs,
            "[0, train.epochs]",
        )?;
        let rho = self.prune.target_flops_reduction;
        check(
            rho > 0.0 && rho < 1.0,
            "prune.target_flops_reduction",
            rho,
            "(0, 1)",
        )?;
        let tol = self.prune.tolerance;
        check(
            (0.0..0.5).contains(&tol),
            "prune.tolerance",
            tol,
            "[0, 0.5)",
        )?;
        let round_to = self.prune.round_to;
        check(round_to >= 1, "prune.round_to", round_to, "[1, ∞)")?;
        let b = &self.bench;
        check(b.batch >= 1, "bench.batch", b.batch, "[1, ∞)")?;
        check(b.repeats >= 1, "bench.repeats", b.repeats, "[1, ∞)")?;
        let a = &self.ato;
        check(
            a.lambda >= 0.0 && a.lambda.is_finite(),
            "ato.lambda",
            a.lambda,
            "[0, ∞)",
        )?;
        check(
            a.gamma >= 0.0 && a.gamma.is_finite(),
            "ato.gamma",
            a.gamma,
            "[0, ∞)",
        )?;
        check(
            a.lambda_final_mult >= 0.0 && a.lambda_final_mult.is_finite(),
            "ato.lambda_final_mult",
            a.lambda_final_mult,
            "[0, ∞)",
        )?;
        check(
            a.min_controller_steps >= 1,
            "ato.min_controller_steps",
            a.min_controller_steps,
            "[1, ∞)",
        )?;
        check(
            a.controller_lr_sum >= 0.0 && a.controller_lr_sum.is_finite(),
            "ato.controller_lr_sum",
            a.controller_lr_sum,
            "[0, ∞)",
        )?;
        check(
            a.settle_lr_mult > 0.0 && a.settle_lr_mult.is_finite(),
            "ato.settle_lr_mult",
            a.settle_lr_mult,
            "(0, ∞)",
        )?;
        check(
            (0.0..0.1).contains(&a.dead_band),
            "ato.dead_band",
            a.dead_band,
            "[0, 0.1)",
        )?;
        check(
            a.controller_lr_drop_factor > 0.0 && a.controller_lr_drop_factor <= 1.0,
            "ato.controller_lr_drop_factor",
            a.controller_lr_drop_factor,
            "(0, 1]",
        )?;
        check(
            (0.0..1.0).contains(&a.epsilon),
            "ato.epsilon",
            a.epsilon,
            "[0, 1)",
        )?;
        check(
            a.controller_lr > 0.0 && a.controller_lr.is_finite(),
            "ato.controller_lr",
            a.controller_lr,
            "(0, ∞)",
        )?;
        check(
            a.controller_weight_decay >= 0.0 && a.controller_weight_decay.is_finite(),
            "ato.controller_weight_decay",
            a.controller_weight_decay,
            "[0, ∞)",
        )?;
        check(
            a.controller_fraction > 0.0 && a.controller_fraction <= 1.0,
            "ato.controller_fraction",
            a.controller_fraction,
            "(0, 1]",
        )?;
        for (key, spec) in [
            ("ato.t_start", self.ato.t_start),
            ("ato.t_prox", self.ato.t_prox),
            ("ato.t_end", self.ato.t_end),
            ("ato.lambda_switch", self.ato.lambda_switch),
            ("ato.controller_lr_drop", self.ato.controller_lr_drop),
            ("oto.n_p", self.oto.n_p),
            ("otov2.start_pruning", self.otov2.start_pruning),
        ] {
            if let Some(super::EpochSpec::Fraction(f)) = spec {
                check(
                    (0.0..=1.0).contains(&f),
                    key,
                    f,
                    "[0, 1] (a fraction of train.epochs; write an integer for an epoch)",
                )?;
            }
        }
        let s = self.schedule();
        if s.t_start > s.t_end {
            return Err(invalid(
                "ato.t_start",
                format!("T_start = {} is after T_end = {}", s.t_start, s.t_end),
            ));
        }
        check(
            s.t_end <= t.epochs,
            "ato.t_end",
            s.t_end,
            &format!("[T_start, train.epochs = {}]", t.epochs),
        )?;
        if s.t_prox < s.t_start || s.t_prox >= t.epochs {
            return Err(invalid(
                "ato.t_prox",
                format!("T_prox = {} is outside the run: it must lie in [T_start = {}, train.epochs = {})", s.t_prox, s.t_start, t.epochs),
            ));
        }
        let h = &self.oto;
        check(
            h.lambda >= 0.0 && h.lambda.is_finite(),
            "oto.lambda",
            h.lambda,
            "[0, ∞)",
        )?;
        check(
            (0.0..1.0).contains(&h.epsilon),
            "oto.epsilon",
            h.epsilon,
            "[0, 1)",
        )?;
        let n_p = self.oto_n_p();
        check(n_p <= t.epochs, "oto.n_p", n_p, "[0, train.epochs]")?;
        if let Some(m) = self.hesso.momentum {
            check((0.0..1.0).contains(&m), "hesso.momentum", m, "[0, 1)")?;
        }
        if self.method == super::Method::Hesso
            && self.hesso.last_group == super::LastGroup::Lower
            && self.hesso.target_group_sparsity.is_none()
        {
            return Err(invalid(
                "hesso.last_group",
                "\"lower\" lowers a group-count target: set hesso.target_group_sparsity, or \
                 use \"next\" with the MACs target",
            ));
        }
        let d = &self.otov2;
        check(
            d.target_group_sparsity > 0.0 && d.target_group_sparsity < 1.0,
            "otov2.target_group_sparsity",
            d.target_group_sparsity,
            "(0, 1)",
        )?;
        let lambda = self.otov2_lambda();
        check(
            lambda >= 0.0 && lambda.is_finite(),
            "otov2.lambda",
            lambda,
            "[0, ∞)",
        )?;
        check(
            (0.0..1.0).contains(&d.epsilon),
            "otov2.epsilon",
            d.epsilon,
            "[0, 1)",
        )?;
        let start = self.otov2_start();
        check(
            start <= t.epochs,
            "otov2.start_pruning",
            start,
            "[0, train.epochs]",
        )?;
        for (key, n) in [
            ("dataset.synth_train", self.dataset.synth_train),
            ("dataset.synth_test", self.dataset.synth_test),
        ] {
            if let Some(n) = n {
                check(n >= 1, key, n, "[1, ∞)")?;
            }
        }
        for (key, value, max) in [
            ("dataset.color_jitter", self.dataset.color_jitter, 1.0),
            (
                "dataset.color_jitter_hue",
                self.dataset.color_jitter_hue,
                0.5,
            ),
        ] {
            if let Some(s) = value {
                check((0.0..=max).contains(&s), key, s, &format!("[0, {max}]"))?;
                if self.dataset.name != super::DatasetName::ImageNet {
                    return Err(invalid(
                        key,
                        format!(
                            "applies to imagenet only, not {}",
                            self.dataset.name.as_str()
                        ),
                    ));
                }
            }
        }
        self.validate_baselines()?;
        let c = &self.convergence;
        if c.every > 0 {
            check(c.batches >= 2, "convergence.batches", c.batches, "[2, ∞)")?;
        }
        self.check_fault()?;
        self.check_theorem_mode()?;
        let dev = self.device.as_str();
        let cuda_n = dev
            .strip_prefix("cuda:")
            .map(|n| n.parse::<usize>().is_ok());
        if !(matches!(dev, "auto" | "cpu" | "cuda") || cuda_n == Some(true)) {
            return Err(invalid(
                "device",
                format!("`{dev}` is not auto, cpu, cuda or cuda:N"),
            ));
        }
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(invalid(
                "name",
                format!("`{}` must be a non-empty folder name", self.name),
            ));
        }
        self.model_config()?
            .validate()
            .map_err(|e| TrainError::Config(e.to_string()))?;
        Ok(())
    }
}
