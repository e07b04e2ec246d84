//! The ImageNet-folder pipeline on JPEGs this test writes: class indexing, shapes, the
//! eval center crop, determinism, and corrupt-file handling.

use std::fs;
use std::path::Path;

use ato_data::imagenet::decode_rgb;
use ato_data::{
    CorruptImagePolicy, DataError, Dataset, ImageNetOptions, Loader, LoaderConfig, Split,
};
use candle_core::Device;
use image::{Rgb, RgbImage};

/// A `w × h` image: a red centre square (half the shorter side) on a blue background.
fn target_image(w: u32, h: u32) -> RgbImage {
    let side = w.min(h) / 2;
    let (x0, y0) = ((w - side) / 2, (h - side) / 2);
    RgbImage::from_fn(w, h, |x, y| {
        if (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y) {
            Rgb([230, 20, 20])
        } else {
            Rgb([20, 20, 230])
        }
    })
}

fn write_folder(root: &Path) {
    for (split, per_class) in [("train", 3u32), ("val", 2)] {
        for class in ["n02_zebra", "n01_apple", "n03_cat"] {
            let dir = root.join(split).join(class);
            fs::create_dir_all(&dir).unwrap();
            for i in 0..per_class {
                target_image(40 + 9 * i, 30 + 5 * i)
                    .save(dir.join(format!("img{i}.JPEG")))
                    .unwrap();
            }
            fs::write(dir.join("notes.txt"), "not an image").unwrap();
        }
    }
}

fn options(size: usize) -> ImageNetOptions {
    ImageNetOptions {
        output_size: size,
        ..ImageNetOptions::default()
    }
}

#[test]
fn classes_are_sorted_folder_names_and_batches_have_the_requested_size() {
    let root = tempfile::tempdir().unwrap();
    write_folder(root.path());
    let train = Dataset::imagenet(root.path(), Split::Train, options(16)).unwrap();
    assert_eq!((train.len(), train.num_classes()), (9, 3));
    // n01_apple sorts first: its three images carry label 0.
    assert_eq!(
        (0..3).map(|i| train.label(i)).collect::<Vec<_>>(),
        vec![0, 0, 0]
    );
    assert_eq!(train.label(8), 2);
    let loader = Loader::new(&train, LoaderConfig::train(4, 1), &Device::Cpu).unwrap();
    let batches: Vec<_> = loader.epoch(0).map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].images.dims(), &[4, 3, 16, 16]);
    // Same seed and epoch: identical augmentation.
    let again = loader.load_batch(0, 1).unwrap();
    let diff = (&batches[1].images - &again.images).unwrap().abs().unwrap();
    assert_eq!(diff.max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
}

#[test]
fn eval_transform_center_crops_onto_the_object() {
    let root = tempfile::tempdir().unwrap();
    write_folder(root.path());
    let val = Dataset::imagenet(root.path(), Split::Test, options(8)).unwrap();
    let loader = Loader::new(&val, LoaderConfig::eval(6), &Device::Cpu).unwrap();
    let batch = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!(batch.images.dims(), &[6, 3, 8, 8]);
    // Resize shorter side to 9 then centre-crop 8 lands inside the red square's core:
    // the central 2x2 pixels are red (high R, low B after ImageNet normalisation).
    let images = batch.images.to_dtype(candle_core::DType::F32).unwrap();
    for i in 0..6 {
        let image = images.get(i).unwrap().to_vec3::<f32>().unwrap();
        for (y, x) in [(3, 3), (4, 4)] {
            assert!(
                image[0][y][x] > 1.0 && image[2][y][x] < -0.5,
                "image {i}: {:?}",
                (image[0][y][x], image[2][y][x])
            );
        }
        // The corners show the blue background.
        assert!(image[2][0][0] > 1.0);
    }
}

#[test]
fn corrupt_jpeg_is_skipped_counted_and_reported_or_fails_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    write_folder(root.path());
    let bad = root.path().join("train/n03_cat/broken.jpg");
    let mut bytes = fs::read(root.path().join("train/n03_cat/img0.JPEG")).unwrap();
    bytes.truncate(bytes.len() / 3);
    bytes.extend_from_slice(&[0xFF; 40]);
    fs::write(&bad, &bytes).unwrap();
    fs::write(root.path().join("train/n03_cat/zero.jpg"), b"").unwrap();

    let err = decode_rgb(&bad).unwrap_err();
    assert!(matches!(err, DataError::UnreadableImage { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.jpg"));

    let skip = Dataset::imagenet(root.path(), Split::Train, options(8)).unwrap();
    assert_eq!(skip.len(), 11);
    let loader = Loader::new(&skip, LoaderConfig::eval(11), &Device::Cpu).unwrap();
    let batch = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!((batch.skipped, batch.images.dims()[0]), (2, 9));
    let (count, paths) = loader.corrupt_images();
    assert_eq!(count, 2);
    assert!(paths.contains(&bad));

    let strict = ImageNetOptions {
        on_corrupt: CorruptImagePolicy::Fail,
        ..options(8)
    };
    let fail = Dataset::imagenet(root.path(), Split::Train, strict).unwrap();
    let loader = Loader::new(&fail, LoaderConfig::eval(4), &Device::Cpu).unwrap();
    let results: Vec<_> = loader.epoch(0).collect();
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("an error");
    let message = err.to_string();
    assert!(
        message.contains("broken.jpg") || message.contains("zero.jpg"),
        "{message}"
    );
    assert!(
        results.last().unwrap().is_err(),
        "the epoch ends at the error"
    );
}

#[test]
fn missing_or_empty_folders_are_clear_errors() {
    let root = tempfile::tempdir().unwrap();
    let err = Dataset::imagenet(root.path(), Split::Train, options(8)).unwrap_err();
    assert!(matches!(err, DataError::MissingDir { .. }));
    assert!(err.to_string().contains("train"));
    fs::create_dir_all(root.path().join("val/n01")).unwrap();
    let err = Dataset::imagenet(root.path(), Split::Test, options(8)).unwrap_err();
    assert!(matches!(err, DataError::EmptyImageFolder { .. }), "{err:?}");
    assert!(err.to_string().contains("val"));
}

#[test]
fn color_jitter_changes_training_images_only() {
    let root = tempfile::tempdir().unwrap();
    write_folder(root.path());
    let jittered = ImageNetOptions {
        color_jitter: Some(ato_data::ColorJitter::default()),
        ..options(16)
    };
    let max_diff = |split: Split, config: LoaderConfig| {
        let plain = Dataset::imagenet(root.path(), split, options(16)).unwrap();
        let jit = Dataset::imagenet(root.path(), split, jittered).unwrap();
        let a = Loader::new(&plain, config, &Device::Cpu).unwrap();
        let b = Loader::new(&jit, config, &Device::Cpu).unwrap();
        let (a, b) = (a.load_batch(0, 0).unwrap(), b.load_batch(0, 0).unwrap());
        let d = (&a.images - &b.images).unwrap().abs().unwrap();
        d.max_all().unwrap().to_scalar::<f32>().unwrap()
    };
    assert!(max_diff(Split::Train, LoaderConfig::train(4, 1)) > 0.05);
    assert_eq!(max_diff(Split::Test, LoaderConfig::eval(4)), 0.0);
}
