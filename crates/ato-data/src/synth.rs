//! The synthetic CIFAR-format data set: small, deterministic, and solvable only by a model
//! with local, translation-invariant features.
//!
//! Each class owns one 5×5 binary glyph (drawn at 3× scale, 15×15 pixels). An image is a
//! random background colour with a random gradient, two solid distractor rectangles, one
//! small random speckle pattern, the class glyph at a uniformly random position in a random
//! contrasting colour, and per-pixel Gaussian noise. Because position and colours are
//! independent of the class, no pixel (and no linear combination of pixels) carries much
//! class information; a conv net finds the glyph wherever it is. Glyphs are chosen at least
//! 5 cells apart (Hamming) from every other glyph *and its mirror image*, so the horizontal
//! flip augmentation never maps one class onto another.
//!
//! Glyphs depend only on the number of classes (the task is the same for every seed); the
//! seed decides the images. Image `i` of a split is a pure function of `(seed, split, i)`.

use std::path::{Path, PathBuf};

use rand::Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use crate::augment::seeded_rng;
use crate::cifar::{CifarFormat, Split, CIFAR_IMAGE_BYTES, CIFAR_SIDE};
use crate::cifar_write::write_cifar_file;
use crate::error::{DataError, Result};

const GLYPH_CELLS: usize = 5;
const GLYPH_SCALE: usize = 3;
const GLYPH_SEED: u64 = 0x5EED_61F4;
const MIN_GLYPH_DISTANCE: u32 = 5;
const NOISE_STD: f32 = 0.06;
/// Version of the images [`render_image`] draws, part of the folder name ([`synth_dir_sized`]):
/// a changed generator writes a new folder instead of reading a stale one, and from version 3 on
/// it is part of the run ids of synthetic runs (`ato_train::RunConfig::run_id_for_generator`),
/// so a sweep never reuses a run made on other images. Version 2 draws the
/// glyph at 3× (15 × 15 pixels; version 1: 2×, a task SGD at lr 0.1 stayed at chance on for
/// five epochs).
pub const GENERATOR_VERSION: u32 = 2;

/// Per-channel mean of the generated images (measured on synth10, seed 0, 10,000 images).
pub const SYNTH_MEAN: [f32; 3] = [0.4990, 0.4988, 0.4996];
/// Per-channel standard deviation of the generated images (same measurement).
pub const SYNTH_STD: [f32; 3] = [0.2462, 0.2466, 0.2462];

/// Image counts used by [`ensure_synth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthSize {
    pub train: usize,
    pub test: usize,
}

impl SynthSize {
    /// Defaults: 10 classes → 10,000 / 2,000; 100 classes → 20,000 / 4,000.
    pub fn default_for(classes: usize) -> Self {
        if classes <= 10 {
            SynthSize {
                train: 10_000,
                test: 2_000,
            }
        } else {
            SynthSize {
                train: 20_000,
                test: 4_000,
            }
        }
    }
}

/// The CIFAR layout used for a class count (10 → CIFAR-10, 100 → CIFAR-100).
pub fn synth_format(classes: usize) -> Result<CifarFormat> {
    match classes {
        10 => Ok(CifarFormat::Cifar10),
        100 => Ok(CifarFormat::Cifar100),
        other => Err(DataError::InvalidArgument(format!(
            "synthetic data has 10 or 100 classes, not {other}"
        ))),
    }
}

/// The class glyphs as 25-bit masks (bit `row * 5 + col`).
pub fn class_glyphs(classes: usize) -> Vec<u32> {
    let mut rng = seeded_rng(&[GLYPH_SEED, classes as u64]);
    let mut glyphs: Vec<u32> = Vec::with_capacity(classes);
    while glyphs.len() < classes {
        let candidate: u32 = rng.random::<u32>() & ((1 << 25) - 1);
        let filled = candidate.count_ones();
        let far_enough = glyphs.iter().all(|&g| {
            (g ^ candidate).count_ones() >= MIN_GLYPH_DISTANCE
                && (mirror(g) ^ candidate).count_ones() >= MIN_GLYPH_DISTANCE
        });
        if (9..=16).contains(&filled) && touches_all_borders(candidate) && far_enough {
            glyphs.push(candidate);
        }
    }
    glyphs
}

fn mirror(glyph: u32) -> u32 {
    let mut out = 0;
    for row in 0..GLYPH_CELLS {
        for col in 0..GLYPH_CELLS {
            if glyph >> (row * GLYPH_CELLS + col) & 1 == 1 {
                out |= 1 << (row * GLYPH_CELLS + GLYPH_CELLS - 1 - col);
            }
        }
    }
    out
}

fn touches_all_borders(glyph: u32) -> bool {
    let row = |r: usize| (glyph >> (r * GLYPH_CELLS)) & 0b11111 != 0;
    let col = |c: usize| (0..GLYPH_CELLS).any(|r| glyph >> (r * GLYPH_CELLS + c) & 1 == 1);
    row(0) && row(GLYPH_CELLS - 1) && col(0) && col(GLYPH_CELLS - 1)
}

/// A float RGB canvas (CHW, values nominally in [0, 1]).
struct Canvas {
    values: Vec<f32>,
}

impl Canvas {
    const PLANE: usize = CIFAR_SIDE * CIFAR_SIDE;

    fn set(&mut self, x: usize, y: usize, colour: [f32; 3]) {
        for (c, value) in colour.iter().enumerate() {
            self.values[c * Self::PLANE + y * CIFAR_SIDE + x] = *value;
        }
    }

    fn fill_rect(&mut self, x0: usize, y0: usize, w: usize, h: usize, colour: [f32; 3]) {
        for y in y0..(y0 + h).min(CIFAR_SIDE) {
            for x in x0..(x0 + w).min(CIFAR_SIDE) {
                self.set(x, y, colour);
            }
        }
    }

    fn draw_mask(&mut self, mask: u32, x0: usize, y0: usize, scale: usize, colour: [f32; 3]) {
        for row in 0..GLYPH_CELLS {
            for col in 0..GLYPH_CELLS {
                if mask >> (row * GLYPH_CELLS + col) & 1 == 1 {
                    self.fill_rect(x0 + col * scale, y0 + row * scale, scale, scale, colour);
                }
            }
        }
    }
}

fn random_colour(rng: &mut impl Rng) -> [f32; 3] {
    [rng.random(), rng.random(), rng.random()]
}

/// A colour that differs from `background` by 0.3–0.55 in every channel.
fn contrasting_colour(rng: &mut impl Rng, background: [f32; 3]) -> [f32; 3] {
    background.map(|b| {
        let delta = rng.random_range(0.3..0.55);
        if b < 0.5 {
            b + delta
        } else {
            b - delta
        }
    })
}

/// Renders image `index` of `split` with class `label` into 3072 CHW bytes.
pub fn render_image(
    glyphs: &[u32],
    label: usize,
    seed: u64,
    split: Split,
    index: usize,
) -> Vec<u8> {
    let split_id = match split {
        Split::Train => 1,
        Split::Test => 2,
    };
    let mut rng = seeded_rng(&[seed, split_id, index as u64]);
    let background: [f32; 3] = [0; 3].map(|_| rng.random_range(0.1..0.9));
    let (grad_x, grad_y) = (rng.random_range(-0.15..0.15), rng.random_range(-0.15..0.15));
    let mut canvas = Canvas {
        values: vec![0.0; CIFAR_IMAGE_BYTES],
    };
    for y in 0..CIFAR_SIDE {
        for x in 0..CIFAR_SIDE {
            let shade = grad_x * (x as f32 / 31.0 - 0.5) + grad_y * (y as f32 / 31.0 - 0.5);
            canvas.set(x, y, background.map(|b| b + shade));
        }
    }
    for _ in 0..2 {
        let (w, h) = (rng.random_range(2..=5), rng.random_range(2..=5));
        let (x, y) = (
            rng.random_range(0..CIFAR_SIDE - w),
            rng.random_range(0..CIFAR_SIDE - h),
        );
        let colour = random_colour(&mut rng);
        canvas.fill_rect(x, y, w, h, colour);
    }
    let speckle: u32 = rng.random::<u32>() & ((1 << 25) - 1);
    let (sx, sy) = (rng.random_range(0..=27), rng.random_range(0..=27));
    let speckle_colour = random_colour(&mut rng);
    canvas.draw_mask(speckle, sx, sy, 1, speckle_colour);

    let extent = GLYPH_CELLS * GLYPH_SCALE;
    let (gx, gy) = (
        rng.random_range(1..=CIFAR_SIDE - extent - 1),
        rng.random_range(1..=CIFAR_SIDE - extent - 1),
    );
    let ink = contrasting_colour(&mut rng, background);
    canvas.draw_mask(glyphs[label], gx, gy, GLYPH_SCALE, ink);

    let noise = Normal::new(0.0f32, NOISE_STD).expect("valid normal");
    canvas
        .values
        .iter()
        .map(|v| ((v + noise.sample(&mut rng)).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Renders a whole split: images are balanced (`label = index % classes`).
pub fn render_split(classes: usize, count: usize, seed: u64, split: Split) -> (Vec<u8>, Vec<u32>) {
    let glyphs = class_glyphs(classes);
    let images: Vec<Vec<u8>> = (0..count)
        .into_par_iter()
        .map(|i| render_image(&glyphs, i % classes, seed, split, i))
        .collect();
    let labels = (0..count).map(|i| (i % classes) as u32).collect();
    (images.concat(), labels)
}

/// Writes a synthetic data set under `out_dir` in the exact official layout
/// (`cifar-10-batches-bin/…` or `cifar-100-binary/…`, including the label-name text files)
/// and returns `out_dir`. Every file is written atomically.
pub fn write_synth(out_dir: &Path, classes: usize, size: SynthSize, seed: u64) -> Result<PathBuf> {
    let format = synth_format(classes)?;
    let folder = out_dir.join(format.folder_name());
    std::fs::create_dir_all(&folder).map_err(|e| DataError::io(&folder, e))?;
    let names: String = (0..classes).map(|c| format!("glyph_{c:02}\n")).collect();
    match format {
        CifarFormat::Cifar10 => {
            ato_files::write_bytes(&folder.join("batches.meta.txt"), names.as_bytes())?
        }
        CifarFormat::Cifar100 => {
            let coarse: String = (0..20).map(|c| format!("group_{c:02}\n")).collect();
            ato_files::write_bytes(&folder.join("fine_label_names.txt"), names.as_bytes())?;
            ato_files::write_bytes(&folder.join("coarse_label_names.txt"), coarse.as_bytes())?;
        }
    }
    for (split, count) in [(Split::Train, size.train), (Split::Test, size.test)] {
        let (pixels, labels) = render_split(classes, count, seed, split);
        let files = format.split_files(split);
        for (part, name) in files.iter().enumerate() {
            let (lo, hi) = file_range(count, files.len(), part);
            write_cifar_file(
                &folder.join(name),
                format,
                &pixels[lo * CIFAR_IMAGE_BYTES..hi * CIFAR_IMAGE_BYTES],
                &labels[lo..hi],
                None,
            )?;
        }
    }
    Ok(out_dir.to_path_buf())
}

/// Images `[lo, hi)` of a split of `count` images stored in file `part` of `parts`.
fn file_range(count: usize, parts: usize, part: usize) -> (usize, usize) {
    let per = count / parts;
    let lo = part * per;
    let hi = if part + 1 == parts { count } else { lo + per };
    (lo, hi)
}

/// The folder [`ensure_synth`] uses for a class count and seed:
/// `root/synth{classes}-v{GENERATOR_VERSION}-seed{seed}`.
pub fn synth_dir(root: &Path, classes: usize, seed: u64) -> PathBuf {
    synth_dir_sized(root, classes, seed, SynthSize::default_for(classes))
}

/// The folder of a synthetic set of any size: `synth{classes}-v{version}-seed{seed}` at the
/// default size, `…-seed{seed}-{train}x{test}` otherwise, so sets of different sizes (or from
/// another [`GENERATOR_VERSION`]) never overwrite or stand in for each other.
pub fn synth_dir_sized(root: &Path, classes: usize, seed: u64, size: SynthSize) -> PathBuf {
    if size == SynthSize::default_for(classes) {
        root.join(format!("synth{classes}-v{GENERATOR_VERSION}-seed{seed}"))
    } else {
        root.join(format!(
            "synth{classes}-v{GENERATOR_VERSION}-seed{seed}-{}x{}",
            size.train, size.test
        ))
    }
}

/// Returns the synthetic data set for `(classes, seed)` under the data root, generating it
/// with [`SynthSize::default_for`] on first use. Files with the wrong size (e.g. from a killed
/// run) are regenerated.
pub fn ensure_synth(root: &Path, classes: usize, seed: u64) -> Result<PathBuf> {
    ensure_synth_sized(root, classes, seed, SynthSize::default_for(classes))
}

/// [`ensure_synth`] with explicit image counts.
pub fn ensure_synth_sized(
    root: &Path,
    classes: usize,
    seed: u64,
    size: SynthSize,
) -> Result<PathBuf> {
    let format = synth_format(classes)?;
    let dir = synth_dir_sized(root, classes, seed, size);
    let folder = dir.join(format.folder_name());
    let complete = [(Split::Train, size.train), (Split::Test, size.test)]
        .into_iter()
        .all(|(split, count)| {
            let files = format.split_files(split);
            files.iter().enumerate().all(|(part, name)| {
                let (lo, hi) = file_range(count, files.len(), part);
                std::fs::metadata(folder.join(name))
                    .is_ok_and(|m| m.len() == ((hi - lo) * format.record_size()) as u64)
            })
        });
    if !complete {
        write_synth(&dir, classes, size, seed)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_are_distinct_even_after_mirroring() {
        for classes in [10, 100] {
            let glyphs = class_glyphs(classes);
            for (i, a) in glyphs.iter().enumerate() {
                assert!(touches_all_borders(*a));
                for b in &glyphs[i + 1..] {
                    assert!((a ^ b).count_ones() >= MIN_GLYPH_DISTANCE);
                    assert!((mirror(*a) ^ b).count_ones() >= MIN_GLYPH_DISTANCE);
                }
            }
        }
    }

    #[test]
    fn rendering_is_deterministic_per_seed_and_index() {
        let glyphs = class_glyphs(10);
        let a = render_image(&glyphs, 3, 7, Split::Train, 5);
        assert_eq!(a, render_image(&glyphs, 3, 7, Split::Train, 5));
        assert_ne!(a, render_image(&glyphs, 3, 8, Split::Train, 5));
        assert_ne!(a, render_image(&glyphs, 3, 7, Split::Test, 5));
        assert_eq!(a.len(), CIFAR_IMAGE_BYTES);
    }

    #[test]
    fn file_ranges_cover_the_split() {
        assert_eq!(file_range(10_003, 5, 0), (0, 2000));
        assert_eq!(file_range(10_003, 5, 4), (8000, 10_003));
    }
}
