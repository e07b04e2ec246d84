//! Every model of the registry runs and counts itself; bad configs and files give errors
//! that name the cause.

use ato_models::{describe, Model, ModelConfig, ModelError, ModelName, ShortcutKind};
use ato_zig::WidthPolynomial;
use candle_core::{Device, Tensor};

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
