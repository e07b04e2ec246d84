//! The embedded real data set `digits`: the UCI optical-recognition handwritten digits
//! (Alpaydin & Kaynak 1998; CC BY 4.0), 1,797 greyscale 8×8 images of the digits 0–9, each
//! pixel the count of set pixels (0..=16) in a 4×4 block of a 32×32 bitmap.
//!
//! The file is `data/digits.csv.gz` of this crate, byte for byte the copy scikit-learn ships
//! (`sklearn/datasets/data/digits.csv.gz`): one line per image, 64 pixel values in row-major
//! order and the label last. It is compiled into the binary, so `dataset.name = "digits"`
//! needs no data folder and no download.
//!
//! - **Split:** the images at even positions in the file (0, 2, …) are the training split (899
//!   images), those at odd positions the test split (898); both hold 86–93 images of every
//!   class.
//! - **Pixels:** a count `v` becomes the byte `(255·v + 8) / 16` (16 → 255), so the usual
//!   `x / 255` scaling and [`DIGITS_MEAN`]/[`DIGITS_STD`] (measured on the training split)
//!   apply.
//! - **Augmentation:** a random shift of up to [`DIGITS_SHIFT`] pixel with zero padding, no
//!   flip (a mirrored digit is another glyph).

use std::io::Read;

use crate::cifar::Split;
use crate::error::{DataError, Result};

/// The gzipped CSV, as shipped by scikit-learn.
pub static DIGITS_CSV_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// Side of an image.
pub const DIGITS_SIDE: usize = 8;
/// Pixels of an image.
pub const DIGITS_PIXELS: usize = DIGITS_SIDE * DIGITS_SIDE;
/// Images in the file.
pub const DIGITS_COUNT: usize = 1797;
/// Classes (the digits 0–9).
pub const DIGITS_CLASSES: usize = 10;
/// Largest pixel count in the file.
pub const DIGITS_MAX_VALUE: u8 = 16;
/// Mean of the training split's pixels on the [0, 1] scale.
pub const DIGITS_MEAN: f32 = 0.305_662;
/// Standard deviation of the training split's pixels on the [0, 1] scale.
pub const DIGITS_STD: f32 = 0.375_987;
/// Largest shift of the training augmentation, in pixels.
pub const DIGITS_SHIFT: usize = 1;

/// Greyscale square images in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct GreyImages {
    pub side: usize,
    /// `len() × side²` bytes, each image row-major.
    pub pixels: Vec<u8>,
    pub labels: Vec<u32>,
}

impl GreyImages {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.side * self.side;
        &self.pixels[index * n..(index + 1) * n]
    }
}

/// A pixel count (0..=16) as a byte on the 0..=255 scale.
pub fn count_to_byte(count: u8) -> u8 {
    ((255 * count as u32 + 8) / 16) as u8
}

/// Parses the gzipped CSV `gz` (named `source` in errors): every image, in file order.
/// A truncated or corrupt file, a line without 65 fields, a value out of range or a count
/// other than [`DIGITS_COUNT`] is an error naming the line.
pub fn parse_digits(gz: &[u8], source: &str) -> Result<GreyImages> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .map_err(|e| DataError::Corrupt(format!("{source}: not a complete gzip file ({e})")))?;
    let mut pixels = Vec::with_capacity(DIGITS_COUNT * DIGITS_PIXELS);
    let mut labels = Vec::with_capacity(DIGITS_COUNT);
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |what: String| DataError::Corrupt(format!("{source}: line {}: {what}", n + 1));
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != DIGITS_PIXELS + 1 {
            return Err(bad(format!(
                "{} fields, expected {}",
                fields.len(),
                DIGITS_PIXELS + 1
            )));
        }
        for (i, f) in fields.iter().enumerate() {
            let v: f64 = f
                .trim()
                .parse()
                .map_err(|_| bad(format!("field {} is not a number: {f:?}", i + 1)))?;
            let max = if i == DIGITS_PIXELS {
                DIGITS_CLASSES as f64 - 1.0
            } else {
                DIGITS_MAX_VALUE as f64
            };
            if v.fract() != 0.0 || !(0.0..=max).contains(&v) {
                return Err(bad(format!(
                    "field {} = {f} is not an integer in 0..={max}",
                    i + 1
                )));
            }
            if i == DIGITS_PIXELS {
                labels.push(v as u32);
            } else {
                pixels.push(count_to_byte(v as u8));
            }
        }
    }
    if labels.len() != DIGITS_COUNT {
        return Err(DataError::Corrupt(format!(
            "{source}: {} images, expected {DIGITS_COUNT} (truncated?)",
            labels.len()
        )));
    }
    Ok(GreyImages {
        side: DIGITS_SIDE,
        pixels,
        labels,
    })
}

/// One split of `all` (every image of the file): even positions train, odd ones test.
pub fn digits_split(all: &GreyImages, split: Split) -> GreyImages {
    let parity = match split {
        Split::Train => 0,
        Split::Test => 1,
    };
    let keep: Vec<usize> = (0..all.len()).filter(|i| i % 2 == parity).collect();
    GreyImages {
        side: all.side,
        pixels: keep.iter().flat_map(|&i| all.image(i)).copied().collect(),
        labels: keep.iter().map(|&i| all.labels[i]).collect(),
    }
}

/// A split of the embedded set.
pub fn load_digits(split: Split) -> Result<GreyImages> {
    Ok(digits_split(
        &parse_digits(DIGITS_CSV_GZ, "digits.csv.gz")?,
        split,
    ))
}
