//! What a run writes: CSV rows and checkpoints, atomically.

use ato_train::*;

#[test]
fn csv_files_round_trip_and_leave_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.csv");
    let row = |e: usize| EpochMetrics {
        epoch: e,
        lr: 0.1,
        train_loss: 2.3 - e as f64,
        train_top1: 0.1,
        test_loss: 2.2,
        test_top1: 0.12,
        test_top5: 0.5,
        masked_top1: 0.12,
        mask_macs_ratio: 1.0,
        group_sparsity: 0.0,
        zero_groups: 0,
        controller_loss: 0.0,
        flops_reg: 0.0,
        controller_steps: 0,
        train_seconds: 1.2,
        seconds: 1.5,
    };
    write_csv_atomically(&path, &[row(0), row(1)]).unwrap();
    let back: Vec<EpochMetrics> = read_csv(&path).unwrap();
    assert_eq!(back, vec![row(0), row(1)]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("epoch,lr,train_loss,train_top1,test_loss,test_top1,test_top5,masked_top1,mask_macs_ratio,group_sparsity,zero_groups,controller_loss,flops_reg,controller_steps,train_seconds,seconds\n"));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    // a truncated file is an error naming the file and row
    std::fs::write(&path, &text[..text.len() - 10]).unwrap();
    let e = read_csv::<EpochMetrics>(&path).unwrap_err().to_string();
    assert!(e.contains("metrics.csv") && e.contains("row 2"), "{e}");
}

#[test]
fn checkpoints_swap_atomically_and_survive_a_kill_mid_swap() {
    let dir = tempfile::tempdir().unwrap();
    let ck = CheckpointDir::new(dir.path());
    assert!(ck.latest().unwrap().is_none());
    let state = |e| RunState {
        epochs_done: e,
        global_step: 10 * e as u64,
        seconds: 1.0,
    };
    ck.save(&state(1), |p| {
        write_text_atomically(&p.join("model.txt"), "one")
    })
    .unwrap();
    ck.save(&state(2), |p| {
        write_text_atomically(&p.join("model.txt"), "two")
    })
    .unwrap();
    let (path, s) = ck.latest().unwrap().unwrap();
    assert_eq!(s.epochs_done, 2);
    assert_eq!(
        std::fs::read_to_string(path.join("model.txt")).unwrap(),
        "two"
    );
    // a failing writer leaves the last checkpoint in place
    let e = ck.save(&state(3), |_| {
        Err(ato_train::TrainError::Io("disk full".into()))
    });
    assert!(e.is_err());
    assert_eq!(ck.latest().unwrap().unwrap().1.epochs_done, 2);
    // killed between the two renames: only checkpoint.old exists
    std::fs::rename(
        dir.path().join("checkpoint"),
        dir.path().join("checkpoint.old"),
    )
    .unwrap();
    assert_eq!(ck.latest().unwrap().unwrap().1.epochs_done, 2);
    ck.save(&state(3), |p| {
        write_text_atomically(&p.join("model.txt"), "three")
    })
    .unwrap();
    assert_eq!(ck.latest().unwrap().unwrap().1.epochs_done, 3);
    assert!(
        !dir.path().join("checkpoint.old").exists() && !dir.path().join("checkpoint.new").exists()
    );
}

#[test]
fn summary_rows_name_data_set_model_and_method_as_configs_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RunConfig::from_toml(
        "method = \"otov2\"\n[dataset]\nname = \"digits\"\n[model]\nname = \"resnet20\"",
    )
    .unwrap();
    cfg.out_dir = dir.path().display().to_string();
    let row = SummaryRow::planned(&cfg, RunStatus::Finished).unwrap();
    let path = dir.path().join("summary.csv");
    write_csv_atomically(&path, std::slice::from_ref(&row)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(",finished,digits,resnet20,otov2,0,"),
        "{text}"
    );
    let back: Vec<SummaryRow> = read_csv(&path).unwrap();
    assert_eq!(back, [row]);
    assert_eq!(back[0].method, Method::Otov2);
    // every method's name parses back; an unknown one is an error naming it
    for m in Method::ALL {
        assert_eq!(m.to_string().parse::<Method>(), Ok(m));
    }
    let bad = text.replace(",otov2,", ",otov3,");
    std::fs::write(&path, bad).unwrap();
    assert!(read_csv::<SummaryRow>(&path).is_err());
    assert!("otov3".parse::<Method>().unwrap_err().contains("otov3"));
}
