//! The hand-written tensor ops against hand-computed values.

use ato_models::layers::{max_pool_3x3_s2_p1, subsample2};
use candle_core::{Device, Tensor, Var};

fn arange(h: usize, w: usize) -> Var {
    let v: Vec<f32> = (0..h * w).map(|i| i as f32).collect();
    Var::from_tensor(&Tensor::from_vec(v, (1, 1, h, w), &Device::Cpu).unwrap()).unwrap()
}

#[test]
fn max_pool_matches_pytorch_on_a_5x5_ramp() {
    let x = arange(5, 5);
    let y = max_pool_3x3_s2_p1(x.as_tensor()).unwrap();
    // windows end at rows/cols {1, 3, 4}: value 5·r + c
    assert_eq!(
        y.squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap(),
        [[6., 8., 9.], [16., 18., 19.], [21., 23., 24.]]
    );
    let g = y.sum_all().unwrap().backward().unwrap();
    let g: Vec<f32> = g.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let expect: Vec<f32> = (0..25)
        .map(|i| {
            if [6, 8, 9, 16, 18, 19, 21, 23, 24].contains(&i) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    assert_eq!(g, expect);
    // 112 → 56 as in the ImageNet stem; 6 → 3
    let t = Tensor::zeros((1, 2, 112, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(max_pool_3x3_s2_p1(&t).unwrap().dims(), [1, 2, 56, 3]);
}

#[test]
fn subsample_takes_every_second_pixel() {
    let x = arange(3, 4);
    let y = subsample2(x.as_tensor()).unwrap();
    assert_eq!(
        y.squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap(),
        [[0., 2.], [8., 10.]]
    );
}
