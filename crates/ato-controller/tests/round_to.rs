//! The FLOPs term with `prune.round_to`: r counts each gate's width rounded up to a multiple
//! of N (what the compact model will have), with the gradient of the plain sum.

use ato_controller::FlopsRegulariser;
use ato_models::{describe, ModelConfig, ModelName};
use ato_zig::Mask;
use candle_core::{DType, Device, Tensor, Var};

/// ResNet-20 (B) keeping the first `k` channels of every gate of width 16, 32, 64.
fn mask_keeping(widths: &[usize], k: [usize; 3]) -> Mask {
    Mask::from_keep(
        widths
            .iter()
            .map(|&c| {
                let keep = k[(c / 16).trailing_zeros() as usize];
                (0..c).map(|i| i < keep).collect()
            })
            .collect(),
    )
}

fn vars_of(mask: &Mask) -> Vec<Var> {
    mask.gates()
        .iter()
        .map(|m| {
            let v: Vec<f32> = m.iter().map(|&k| k as u8 as f32).collect();
            Var::from_tensor(&Tensor::from_vec(v, m.len(), &Device::Cpu).unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn the_flops_term_counts_rounded_widths_with_the_plain_gradient() {
    let arch = describe(&ModelConfig::new(ModelName::Resnet20, 10, 32)).unwrap();
    let w = arch.gate_widths();
    assert_eq!(w, [16, 16, 16, 32, 32, 32, 64, 64, 64]);
    let plain = FlopsRegulariser::new(&arch, 0.5).unwrap();
    let rounded = FlopsRegulariser::new(&arch, 0.5).unwrap().with_round_to(8);
    // 5 of 16, 9 of 32, 25 of 64 round up to 8, 16, 32: half of every gate, and every gate's
    // prunable MACs are linear in its width, so r = 1/2 exactly
    let m = mask_keeping(&w, [5, 9, 25]);
    assert_eq!(rounded.ratio_of(&m), 0.5);
    assert!(plain.ratio_of(&m) < 0.5);
    assert_eq!(plain.ratio_of(&mask_keeping(&w, [8, 16, 32])), 0.5);
    // the tensor path: the same value, and the same gradient as without rounding
    let vars = vars_of(&m);
    let t: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let r = rounded.ratio(&t).unwrap();
    assert!((r.to_scalar::<f32>().unwrap() - 0.5).abs() < 1e-6);
    let r_plain = plain.ratio(&t).unwrap();
    assert!((r_plain.to_scalar::<f32>().unwrap() as f64 - plain.ratio_of(&m)).abs() < 1e-6);
    let (g, g_plain) = (r.backward().unwrap(), r_plain.backward().unwrap());
    for v in &vars {
        let a: Vec<f32> = g.get(v.as_tensor()).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = g_plain.get(v.as_tensor()).unwrap().to_vec1().unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x > 0.0));
    }
    // a gate with nothing kept counts N channels, a full gate its width
    let none = mask_keeping(&w, [0, 0, 0]);
    assert_eq!(
        rounded.ratio_of(&none),
        plain.ratio_of(&mask_keeping(&w, [8, 8, 8]))
    );
    let zeros: Vec<Tensor> = w
        .iter()
        .map(|&c| Tensor::zeros(c, DType::F32, &Device::Cpu).unwrap())
        .collect();
    let r0 = rounded.ratio(&zeros).unwrap().to_scalar::<f32>().unwrap() as f64;
    assert!((r0 - rounded.ratio_of(&none)).abs() < 1e-6);
    let full = Mask::full(&w);
    assert_eq!(rounded.ratio_of(&full), 1.0);
}
