//! OTO (HSPG), OTOv2 (DHSPG) and HESSO on a small gated MLP classifier: each reaches its
//! target group sparsity, and zeroed groups stay exactly zero for the rest of training.

mod common;

use ato_optim::{
    DecoupledDecay, Dhspg, DhspgConfig, GroupSet, Hesso, HessoConfig, HessoTarget, Hspg,
    HspgConfig, Optimizer, Sgd, SgdConfig,
};
use ato_zig::{ArchBuilder, Dim, NamedVars};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use common::{param_set, vars};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const IN: usize = 16;
const HIDDEN: usize = 32;
const CLASSES: usize = 4;

struct Mlp {
    vars: NamedVars,
    groups: GroupSet,
    x: Tensor,
    y: Tensor,
}

fn gaussian(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let v: f64 = StandardNormal.sample(rng);
            scale * v as f32
        })
        .collect()
}

/// fc1 (16 → 32, the hidden width is a gate) → ReLU → fc2 (32 → 4), on labels from a linear
/// teacher.
fn mlp() -> Mlp {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let n = 2048;
    let dev = Device::Cpu;
    let x = Tensor::from_vec(gaussian(&mut rng, n * IN, 1.0), (n, IN), &dev).unwrap();
    let teacher =
        Tensor::from_vec(gaussian(&mut rng, IN * CLASSES, 1.0), (IN, CLASSES), &dev).unwrap();
    let y = x.matmul(&teacher).unwrap().argmax(1).unwrap();
    let vars = vars(&[
        (
            "fc1.weight",
            &[HIDDEN, IN],
            &gaussian(&mut rng, HIDDEN * IN, 0.25),
        ),
        ("fc1.bias", &[HIDDEN], &[0.0; HIDDEN]),
        (
            "fc2.weight",
            &[CLASSES, HIDDEN],
            &gaussian(&mut rng, CLASSES * HIDDEN, 0.17),
        ),
        ("fc2.bias", &[CLASSES], &[0.0; CLASSES]),
    ]);
    let mut b = ArchBuilder::new();
    let h = b.gate("fc1", HIDDEN);
    b.linear("fc1", Dim::Fixed(IN), h);
    b.linear("fc2", h, Dim::Fixed(CLASSES));
    let groups = GroupSet::new(&ato_zig::gates(&b.finish().unwrap()), &vars).unwrap();
    Mlp { vars, groups, x, y }
}

impl Mlp {
    fn logits(&self, x: &Tensor) -> Tensor {
        let w1 = self.vars["fc1.weight"].as_tensor();
        let h = x
            .matmul(&w1.t().unwrap())
            .unwrap()
            .broadcast_add(self.vars["fc1.bias"].as_tensor())
            .unwrap()
            .relu()
            .unwrap();
        h.matmul(&self.vars["fc2.weight"].as_tensor().t().unwrap())
            .unwrap()
            .broadcast_add(self.vars["fc2.bias"].as_tensor())
            .unwrap()
    }

    fn loss(&self, step: usize) -> Tensor {
        let start = (step * 64) % (self.x.dim(0).unwrap() - 64);
        let (x, y) = (
            self.x.narrow(0, start, 64).unwrap(),
            self.y.narrow(0, start, 64).unwrap(),
        );
        candle_nn::loss::cross_entropy(&self.logits(&x), &y).unwrap()
    }

    fn accuracy(&self) -> f32 {
        let pred = self.logits(&self.x).argmax(1).unwrap();
        let hits = pred
            .eq(&self.y)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        hits.mean_all().unwrap().to_scalar().unwrap()
    }

    fn zero_set(&self) -> Vec<bool> {
        self.groups.nonzero_mask().unwrap().dropped().concat()
    }
}

/// Trains `steps` steps of SGD (momentum 0.9, η = 0.05); `pre(step, model, grads, sgd)` runs
/// before each base step, `post(step, model, before, lr)` after it.
fn train(
    m: &Mlp,
    steps: usize,
    mut pre: impl FnMut(usize, &Mlp, &mut GradStore, &mut Sgd),
    mut post: impl FnMut(usize, &Mlp, &ato_optim::GroupSnapshot, f64),
) {
    let mut opt = Sgd::new(
        param_set(&m.vars),
        SgdConfig {
            momentum: 0.9,
            ..SgdConfig::default()
        },
    )
    .unwrap();
    for t in 0..steps {
        let before = m.groups.snapshot().unwrap();
        let mut grads = m.loss(t).backward().unwrap();
        pre(t, m, &mut grads, &mut opt);
        opt.step(&grads, 0.05).unwrap();
        post(t, m, &before, 0.05);
    }
}

#[test]
fn oto_hspg_reaches_half_sparsity_and_zero_groups_stay_zero() {
    // the penalty rides the momentum buffer; measured: λ = 0.1 zeroes 19 of 32 groups, all in
    // the first 100 steps of stage 2 (λ = 0.05: 4), at accuracy 0.89
    const LAMBDA: f64 = 0.1;
    let m = mlp();
    let hspg = Hspg::new(HspgConfig {
        lambda: LAMBDA,
        epsilon: 0.0,
    })
    .unwrap();
    let mut zero_at_600 = Vec::new();
    let mut sparsity = Vec::new();
    let pre = |t, m: &Mlp, grads: &mut GradStore, sgd: &mut Sgd| {
        if t == 300 {
            sgd.reset_momentum(); // stage 2 restarts the buffer, as the reference does
        }
        hspg.add_penalty_to_grads(&m.groups, grads).unwrap();
    };
    train(&m, 1200, pre, |t, m, before, _| {
        if t >= 300 {
            hspg.project(&m.groups, before).unwrap();
        }
        if t == 599 {
            zero_at_600 = m.zero_set();
        }
        if t % 100 == 99 {
            sparsity.push(m.zero_set().iter().filter(|&&z| z).count());
        }
    });
    let end = m.zero_set();
    let zeros = end.iter().filter(|&&z| z).count();
    assert!(
        zeros >= HIDDEN / 2,
        "HSPG zeroed {zeros} of {HIDDEN} groups: {sparsity:?}"
    );
    for (g, (&then, &now)) in zero_at_600.iter().zip(&end).enumerate() {
        assert!(!then || now, "group {g} was zero at step 600 and came back");
    }
    assert!(
        m.accuracy() > 0.6,
        "the pruned MLP still classifies: {}",
        m.accuracy()
    );
}

#[test]
fn otov2_dhspg_stops_exactly_at_its_target_and_zero_groups_stay_zero() {
    let m = mlp();
    let mut dh = Dhspg::new(DhspgConfig {
        target: 0.5,
        lambda: 0.05,
        ..DhspgConfig::default()
    })
    .unwrap();
    let mut reached_at = None;
    let mut zero_then = Vec::new();
    let none = DecoupledDecay::none();
    train(
        &m,
        1200,
        |_, _, _, _| {},
        |t, m, before, lr| {
            dh.after_step(&m.groups, before, lr, t >= 100, &none)
                .unwrap();
            let zeros = m.zero_set().iter().filter(|&&z| z).count();
            if zeros >= HIDDEN / 2 && reached_at.is_none() {
                reached_at = Some(t);
                zero_then = m.zero_set();
            }
        },
    );
    let reached = reached_at.unwrap_or_else(|| {
        panic!(
            "DHSPG reaches the target sparsity: {} zero",
            m.zero_set().iter().filter(|&&z| z).count()
        )
    });
    assert!(reached < 1000, "target reached at step {reached}");
    let end = m.zero_set();
    assert_eq!(
        end.iter().filter(|&&z| z).count(),
        HIDDEN / 2,
        "exactly ⌊0.5·32⌋ zero groups"
    );
    assert_eq!(
        end, zero_then,
        "the zero groups are the same ones and still exactly zero"
    );
    // only redundant groups were zeroed
    let redundant = dh.redundant().unwrap().concat();
    assert!(end.iter().zip(&redundant).all(|(&z, &r)| !z || r));
    assert!(m.accuracy() > 0.6, "accuracy {}", m.accuracy());
}

#[test]
fn hesso_prunes_exactly_its_target_and_keeps_the_mlp_accurate() {
    let m = mlp();
    // prune from step 200 over 300 steps in 3 periods (D = 100): ⌊32·0.5⌋ = 16 groups
    let cfg = HessoConfig {
        start_step: 200,
        pruning_steps: 300,
        periods: 3,
    };
    let mut h = Hesso::new(cfg, HessoTarget::GroupSparsity(0.5), &[HIDDEN]).unwrap();
    let none = DecoupledDecay::none();
    train(
        &m,
        800,
        |_, _, _, _| {},
        |_, m, before, lr| {
            h.after_step(&m.groups, Some(before), lr, &none).unwrap();
        },
    );
    let end = m.zero_set();
    assert_eq!(end.iter().filter(|&&z| z).count(), HIDDEN / 2);
    assert_eq!(end, h.pruned().concat());
    assert!(m.accuracy() > 0.6, "accuracy {}", m.accuracy());
}
