//! The embedded UCI digits: counts, shapes, the first images' labels and pixels (read off the
//! CSV by hand), the normalisation constants, and one clear error per kind of bad file.

use std::io::Write;

use ato_data::digits::{
    count_to_byte, digits_split, DIGITS_CSV_GZ, DIGITS_MEAN, DIGITS_PIXELS, DIGITS_STD,
};
use ato_data::{
    parse_digits, Dataset, DatasetName, DatasetSpec, Loader, LoaderConfig, Split, DIGITS_COUNT,
};
use candle_core::Device;

fn gzip(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

#[test]
fn the_embedded_file_holds_1797_images_and_splits_899_898() {
    let all = parse_digits(DIGITS_CSV_GZ, "digits").unwrap();
    assert_eq!(all.len(), DIGITS_COUNT);
    assert_eq!(all.pixels.len(), DIGITS_COUNT * 64);
    // the file cycles through the digits: 0, 1, …, 9, 0, 1, …
    assert_eq!(&all.labels[..12], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    // first line: 0,0,5,13,9,1,0,0, 0,0,13,15,10,15,5,0, …
    let first: Vec<u8> = [0u8, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0]
        .iter()
        .map(|&v| count_to_byte(v))
        .collect();
    assert_eq!(&all.image(0)[..16], first.as_slice());
    assert_eq!(count_to_byte(16), 255);
    assert_eq!(count_to_byte(8), 128);
    let train = digits_split(&all, Split::Train);
    let test = digits_split(&all, Split::Test);
    assert_eq!((train.len(), test.len()), (899, 898));
    assert_eq!(&train.labels[..5], &[0, 2, 4, 6, 8]);
    assert_eq!(&test.labels[..5], &[1, 3, 5, 7, 9]);
    assert_eq!(test.image(0), all.image(1));
    for split in [&train, &test] {
        let mut per_class = [0usize; 10];
        for &l in &split.labels {
            per_class[l as usize] += 1;
        }
        assert!(
            per_class.iter().all(|&n| (86..=93).contains(&n)),
            "{per_class:?}"
        );
    }
}

#[test]
fn the_normalisation_constants_are_the_training_splits_statistics() {
    let train = digits_split(&parse_digits(DIGITS_CSV_GZ, "d").unwrap(), Split::Train);
    let unit: Vec<f64> = train.pixels.iter().map(|&b| b as f64 / 255.0).collect();
    let mean = unit.iter().sum::<f64>() / unit.len() as f64;
    let var = unit.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / unit.len() as f64;
    assert!((mean - DIGITS_MEAN as f64).abs() < 1e-5, "{mean}");
    assert!(
        (var.sqrt() - DIGITS_STD as f64).abs() < 1e-5,
        "{}",
        var.sqrt()
    );
}

#[test]
fn a_loader_yields_one_channel_8x8_batches_with_the_files_labels() {
    let spec = DatasetSpec::new(DatasetName::Digits, "unused");
    let test = Dataset::open(&spec, Split::Test).unwrap();
    assert_eq!(test.sample_shape(), [1, 8, 8]);
    assert_eq!(DatasetName::Digits.shape(), (10, 8));
    assert_eq!(DatasetName::Digits.channels(), 1);
    let loader = Loader::new(&test, LoaderConfig::eval(64), &Device::Cpu).unwrap();
    let batch = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!(batch.images.dims(), &[64, 1, 8, 8]);
    let labels: Vec<u32> = batch.labels.to_vec1().unwrap();
    assert_eq!(&labels[..4], &[1, 3, 5, 7]);
    // the first test image is line 2 of the file: its first pixels 0,0,0,12 normalised
    let x: Vec<f32> = batch.images.flatten_all().unwrap().to_vec1().unwrap();
    let norm = |v: u8| (count_to_byte(v) as f32 / 255.0 - DIGITS_MEAN) / DIGITS_STD;
    assert!((x[0] - norm(0)).abs() < 1e-6);
    assert!((x[3] - norm(12)).abs() < 1e-6);
    // training batches have the same shape (their shifts are tested in augment.rs)
    let train = Dataset::open(&spec, Split::Train).unwrap();
    let loader = Loader::new(&train, LoaderConfig::train(32, 3), &Device::Cpu).unwrap();
    let batch = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!(batch.images.dims(), &[32, 1, 8, 8]);
}

#[test]
fn bad_files_give_one_line_naming_the_cause() {
    let good: String =
        std::iter::repeat_n(format!("{}0\n", "1,".repeat(DIGITS_PIXELS)), 3).collect();
    let err = |bytes: &[u8]| parse_digits(bytes, "my.csv.gz").unwrap_err().to_string();
    // three valid lines are not the whole set
    let e = err(&gzip(&good));
    assert!(e.contains("3 images, expected 1797"), "{e}");
    // a gzip stream cut short
    let whole = DIGITS_CSV_GZ;
    let e = err(&whole[..whole.len() / 2]);
    assert!(e.contains("my.csv.gz: not a complete gzip file"), "{e}");
    // a short line, a value out of range, a label out of range, not a number
    let e = err(&gzip("1,2,3\n"));
    assert!(e.contains("line 1: 3 fields, expected 65"), "{e}");
    let e = err(&gzip(&format!("17,{}0\n", "1,".repeat(DIGITS_PIXELS - 1))));
    assert!(
        e.contains("line 1: field 1 = 17 is not an integer in 0..=16"),
        "{e}"
    );
    let e = err(&gzip(&format!("{good}{}10\n", "1,".repeat(DIGITS_PIXELS))));
    assert!(e.contains("line 4: field 65 = 10"), "{e}");
    let e = err(&gzip(&format!("x,{}0\n", "1,".repeat(DIGITS_PIXELS - 1))));
    assert!(e.contains("field 1 is not a number"), "{e}");
    for e in [err(&gzip("1,2\n")), err(b"not gzip")] {
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

/// `DatasetName::normalize` (what an exported model's metadata states) is what the loaders apply.
#[test]
fn normalize_of_a_name_is_what_its_loader_applies() {
    use ato_data::{Dataset, DatasetName, Split};
    let digits = Dataset::digits(Split::Test).unwrap();
    assert_eq!(DatasetName::Digits.normalize(), digits.normalize());
    let dir = tempfile::tempdir().unwrap();
    let size = ato_data::SynthSize {
        train: 20,
        test: 20,
    };
    let synth = Dataset::synth(dir.path(), 10, 0, size, Split::Test).unwrap();
    assert_eq!(DatasetName::Synth10.normalize(), synth.normalize());
    // negative control: another data set's statistics differ
    assert_ne!(DatasetName::Cifar10.normalize(), digits.normalize());
    assert_ne!(
        DatasetName::Cifar10.normalize(),
        DatasetName::Cifar100.normalize()
    );
}
