//! The hand-written tensor ops against hand-computed values, the registry, and bad input.

use ato_models::layers::{max_pool_3x3_s2_p1, subsample2};
use ato_models::{describe, Model, ModelConfig, ModelError, ModelName, ShortcutKind};
use ato_zig::WidthPolynomial;
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

#[test]
fn every_registry_model_runs_and_counts_itself() {
    for name in ModelName::ALL {
        let mut cfg = ModelConfig::new(name, 7, 32);
        if matches!(name, ModelName::Mobilenetv2) {
            cfg.width_mult = 0.25;
            cfg.stem_stride = Some(2);
        } else {
            cfg.base_width = Some(4);
        }
        assert_eq!(ModelName::parse(name.as_str()).unwrap(), name);
        let m = Model::new(&cfg, &Device::Cpu, 0).unwrap();
        let x = Tensor::ones((2, 3, 32, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            m.forward_t(&x, None, false).unwrap().dims(),
            [2, 7],
            "{name}"
        );
        let arch = describe(&cfg).unwrap();
        assert_eq!(
            m.param_count() as u64,
            WidthPolynomial::params(&arch).eval(&arch.gate_widths()),
            "{name}"
        );
    }
}

#[test]
fn bad_configs_and_files_give_errors_that_name_the_cause() {
    assert!(matches!(
        ModelName::parse("resnet19"),
        Err(ModelError::UnknownModel(_))
    ));
    let mut c = ModelConfig::new(ModelName::Resnet20, 10, 32);
    c.widths = Some(vec![4; 8]);
    let e = Model::new(&c, &Device::Cpu, 0).err().unwrap().to_string();
    assert!(e.contains("expected 9 gate widths, got 8"), "{e}");
    c.widths = Some(vec![0; 9]);
    assert!(Model::new(&c, &Device::Cpu, 0)
        .err()
        .unwrap()
        .to_string()
        .contains("model.widths"));
    let mut c = ModelConfig::new(ModelName::Resnet20, 10, 32);
    c.shortcut = ShortcutKind::A;
    c.base_width = Some(5);
    assert!(Model::new(&c, &Device::Cpu, 0)
        .err()
        .unwrap()
        .to_string()
        .contains("model.base_width"));
    let mut c = ModelConfig::new(ModelName::Mobilenetv2, 10, 32);
    c.width_mult = f64::NAN;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("model.width_mult"));
    assert!(
        serde_json::from_str::<ModelConfig>(r#"{"name":"resnet20","widht":3}"#)
            .unwrap_err()
            .to_string()
            .contains("widht")
    );

    // tensors: wrong shape, missing, extra
    let mut c = ModelConfig::new(ModelName::Resnet20, 10, 32);
    c.base_width = Some(4);
    let m = Model::new(&c, &Device::Cpu, 0).unwrap();
    let mut t = m.tensors();
    t.insert(
        "fc.bias".into(),
        Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let e = Model::from_tensors(&c, t, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("fc.bias") && e.contains("[3]"), "{e}");
    let mut t = m.tensors();
    t.remove("layer1.0.bn1.running_var");
    assert!(Model::from_tensors(&c, t, &Device::Cpu)
        .err()
        .unwrap()
        .to_string()
        .contains("layer1.0.bn1.running_var"));
    let mut t = m.tensors();
    t.insert(
        "extra".into(),
        Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(Model::from_tensors(&c, t, &Device::Cpu)
        .err()
        .unwrap()
        .to_string()
        .contains("extra"));

    // files: a model without its architecture file, a truncated weights file
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    m.save(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = Model::load(&p, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("m.safetensors"), "{e}");
    std::fs::remove_file(dir.path().join("m.arch.json")).unwrap();
    let e = Model::load(&p, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("m.arch.json"), "{e}");
    assert!(!dir.path().join("m.safetensors.tmp").exists());
}
