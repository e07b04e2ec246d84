//! Round trips through both CIFAR binary layouts, the folder checker, and every bad-input
//! error of the readers.

use std::fs;
use std::path::Path;

use ato_data::{
    check_cifar_dir, load_cifar, read_cifar_file, write_cifar_file, CifarFormat, DataError, Split,
    CIFAR_IMAGE_BYTES,
};

/// `count` distinct images (every byte a function of image and position) and labels.
fn known_images(count: usize, classes: u32) -> (Vec<u8>, Vec<u32>) {
    let pixels = (0..count * CIFAR_IMAGE_BYTES)
        .map(|i| ((i / CIFAR_IMAGE_BYTES) * 31 + (i % CIFAR_IMAGE_BYTES) * 7) as u8)
        .collect();
    let labels = (0..count as u32).map(|i| (i * 7 + 3) % classes).collect();
    (pixels, labels)
}

fn write_cifar10(dir: &Path, per_file: usize) -> (Vec<u8>, Vec<u32>, Vec<u8>, Vec<u32>) {
    let folder = dir.join("cifar-10-batches-bin");
    fs::create_dir_all(&folder).unwrap();
    let (train_px, train_lb) = known_images(5 * per_file, 10);
    for part in 0..5 {
        let range = part * per_file..(part + 1) * per_file;
        write_cifar_file(
            &folder.join(format!("data_batch_{}.bin", part + 1)),
            CifarFormat::Cifar10,
            &train_px[range.start * CIFAR_IMAGE_BYTES..range.end * CIFAR_IMAGE_BYTES],
            &train_lb[range],
            None,
        )
        .unwrap();
    }
    let (test_px, mut test_lb) = known_images(per_file, 10);
    test_lb.reverse();
    write_cifar_file(
        &folder.join("test_batch.bin"),
        CifarFormat::Cifar10,
        &test_px,
        &test_lb,
        None,
    )
    .unwrap();
    (train_px, train_lb, test_px, test_lb)
}

#[test]
fn cifar10_round_trip_preserves_every_byte_and_label() {
    let dir = tempfile::tempdir().unwrap();
    let (train_px, train_lb, test_px, test_lb) = write_cifar10(dir.path(), 7);
    let train = load_cifar(dir.path(), CifarFormat::Cifar10, Split::Train).unwrap();
    assert_eq!(train.pixels, train_px);
    assert_eq!(train.labels, train_lb);
    // The official folder itself is accepted as well as its parent.
    let test = load_cifar(
        &dir.path().join("cifar-10-batches-bin"),
        CifarFormat::Cifar10,
        Split::Test,
    )
    .unwrap();
    assert_eq!((test.pixels, test.labels), (test_px, test_lb));
    // Record layout: label byte then the CHW pixels.
    let raw = fs::read(dir.path().join("cifar-10-batches-bin/data_batch_2.bin")).unwrap();
    assert_eq!(raw.len(), 7 * 3073);
    assert_eq!(raw[0] as u32, train_lb[7]);
    assert_eq!(&raw[1..3073], &train_px[7 * 3072..8 * 3072]);
}

#[test]
fn cifar100_round_trip_uses_fine_labels_and_keeps_coarse_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cifar-100-binary");
    fs::create_dir_all(&folder).unwrap();
    let (pixels, fine) = known_images(40, 100);
    let coarse: Vec<u32> = fine.iter().map(|f| (f * 3) % 20).collect();
    for name in ["train.bin", "test.bin"] {
        write_cifar_file(
            &folder.join(name),
            CifarFormat::Cifar100,
            &pixels,
            &fine,
            Some(&coarse),
        )
        .unwrap();
    }
    let raw = fs::read(folder.join("train.bin")).unwrap();
    assert_eq!(raw.len(), 40 * 3074);
    assert_eq!((raw[3074] as u32, raw[3075] as u32), (coarse[1], fine[1]));
    for split in [Split::Train, Split::Test] {
        let images = load_cifar(dir.path(), CifarFormat::Cifar100, split).unwrap();
        assert_eq!(images.pixels, pixels);
        assert_eq!(images.labels, fine);
    }
    let summary = check_cifar_dir(dir.path()).unwrap();
    assert_eq!(summary.format, CifarFormat::Cifar100);
    assert_eq!((summary.train_count, summary.test_count), (40, 40));
}

#[test]
fn check_summarises_a_cifar10_folder_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path(), 4);
    let summary = check_cifar_dir(dir.path()).unwrap();
    assert_eq!(summary.format, CifarFormat::Cifar10);
    assert_eq!((summary.train_count, summary.test_count), (20, 4));
    assert_eq!(summary.files.len(), 6);
    assert_eq!(summary.train_classes_seen, 10);
    let line = summary.to_string();
    assert!(!line.contains('\n'));
    assert!(
        line.contains("CIFAR-10") && line.contains("20 train + 4 test"),
        "{line}"
    );
}

#[test]
fn missing_folder_error_says_where_to_put_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_cifar(dir.path(), CifarFormat::Cifar10, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::MissingDir { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("cifar-10-batches-bin") && message.contains("data_batch_1.bin"));
    let err = check_cifar_dir(&dir.path().join("nope")).unwrap_err();
    assert!(err.to_string().contains("nope"));
}

#[test]
fn missing_file_in_an_existing_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path(), 2);
    fs::remove_file(dir.path().join("cifar-10-batches-bin/data_batch_4.bin")).unwrap();
    let err = load_cifar(dir.path(), CifarFormat::Cifar10, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    assert!(err.to_string().contains("data_batch_4.bin"));
}

#[test]
fn truncated_file_is_reported_with_its_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path(), 3);
    let path = dir.path().join("cifar-10-batches-bin/test_batch.bin");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..2 * 3073 + 100]).unwrap();
    let err = load_cifar(dir.path(), CifarFormat::Cifar10, Split::Test).unwrap_err();
    match &err {
        DataError::BadRecordSize {
            path: p,
            whole_records,
            ..
        } => {
            assert_eq!(p, &path);
            assert_eq!(*whole_records, 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("test_batch.bin"));
}

#[test]
fn cifar100_file_read_as_cifar10_is_a_record_size_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.bin");
    let (pixels, fine) = known_images(3, 100);
    write_cifar_file(&path, CifarFormat::Cifar100, &pixels, &fine, None).unwrap();
    let err = read_cifar_file(&path, CifarFormat::Cifar10).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadRecordSize {
                record_size: 3073,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn label_out_of_range_names_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    let (pixels, labels) = known_images(5, 10);
    write_cifar_file(&path, CifarFormat::Cifar10, &pixels, &labels, None).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[3 * 3073] = 12;
    fs::write(&path, &bytes).unwrap();
    let err = read_cifar_file(&path, CifarFormat::Cifar10).unwrap_err();
    match &err {
        DataError::LabelOutOfRange { index, label, .. } => assert_eq!((*index, *label), (3, 12)),
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("data_batch_1.bin") && message.contains("record 3"),
        "{message}"
    );

    // CIFAR-100: a fine label of 100 and a coarse label of 20 are both rejected.
    let path100 = dir.path().join("test.bin");
    let (pixels, fine) = known_images(4, 100);
    write_cifar_file(&path100, CifarFormat::Cifar100, &pixels, &fine, None).unwrap();
    let good = fs::read(&path100).unwrap();
    let mut bad_fine = good.clone();
    bad_fine[2 * 3074 + 1] = 100;
    fs::write(&path100, &bad_fine).unwrap();
    let err = read_cifar_file(&path100, CifarFormat::Cifar100).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 2,
                kind: "fine",
                ..
            }
        ),
        "{err:?}"
    );
    let mut bad_coarse = good;
    bad_coarse[0] = 20;
    fs::write(&path100, &bad_coarse).unwrap();
    let err = read_cifar_file(&path100, CifarFormat::Cifar100).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 0,
                kind: "coarse",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn writer_rejects_inconsistent_input_instead_of_writing_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bin");
    let (pixels, _) = known_images(2, 10);
    assert!(write_cifar_file(&path, CifarFormat::Cifar10, &pixels, &[1], None).is_err());
    assert!(write_cifar_file(&path, CifarFormat::Cifar10, &pixels, &[1, 10], None).is_err());
    assert!(!path.exists());
    // No temporary files are left behind either.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
