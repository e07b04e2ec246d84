//! Per-channel normalisation and the CIFAR training augmentation (random crop with zero
//! padding + horizontal flip), fused into one pass from `u8` CHW to normalised `f32` CHW.
//!
//! All randomness comes from a caller-supplied seeded RNG (see [`seeded_rng`]), so a batch is
//! a pure function of (seed, epoch, batch index).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mixes several integers into one 64-bit seed (SplitMix64 finaliser over each part).
pub fn mix_seed(parts: &[u64]) -> u64 {
    let mut state: u64 = 0x243F_6A88_85A3_08D3;
    for &part in parts {
        state = state.wrapping_add(part).wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        state = z ^ (z >> 31);
    }
    state
}

/// A ChaCha8 generator seeded from the given parts (e.g. `[seed, epoch, batch]`).
pub fn seeded_rng(parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix_seed(parts))
}

/// Per-channel `(x / 255 - mean) / std` for RGB images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// ImageNet's published per-channel mean.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's published per-channel standard deviation.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Normalize {
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        Normalize { mean, std }
    }

    /// ImageNet statistics.
    pub fn imagenet() -> Self {
        Normalize::new(IMAGENET_MEAN, IMAGENET_STD)
    }

    /// Normalises a value already scaled to [0, 1].
    #[inline]
    pub fn apply_unit(&self, channel: usize, value: f32) -> f32 {
        (value - self.mean[channel]) / self.std[channel]
    }

    /// A 256-entry lookup table per channel: `table[c][byte]` is the normalised value.
    pub fn byte_table(&self) -> [[f32; 256]; 3] {
        let mut table = [[0f32; 256]; 3];
        for (channel, row) in table.iter_mut().enumerate() {
            for (byte, slot) in row.iter_mut().enumerate() {
                *slot = self.apply_unit(channel, byte as f32 / 255.0);
            }
        }
        table
    }
}

/// One draw of the CIFAR augmentation: output pixel `(y, x)` comes from source pixel
/// `(y + shift_y, x' + shift_x)` where `x' = x`, or `width - 1 - x` when `flip` is set;
/// source pixels outside the image are zero (the padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropFlip {
    pub shift_x: i32,
    pub shift_y: i32,
    pub flip: bool,
}

impl CropFlip {
    /// The identity: no shift, no flip.
    pub const IDENTITY: CropFlip = CropFlip {
        shift_x: 0,
        shift_y: 0,
        flip: false,
    };

    /// Draws a crop offset of a `side + 2·padding` zero-padded image (each shift uniform in
    /// `-padding..=padding`) and a flip with probability ½, as torchvision's
    /// `RandomCrop(side, padding)` + `RandomHorizontalFlip()`.
    pub fn sample(rng: &mut impl Rng, padding: usize) -> Self {
        let pad = padding as i32;
        CropFlip {
            shift_x: rng.random_range(-pad..=pad),
            shift_y: rng.random_range(-pad..=pad),
            flip: rng.random_bool(0.5),
        }
    }

    /// Draws a shift only (no flip), each component uniform in `-padding..=padding`: the
    /// augmentation of data whose mirror image is another class (digits).
    pub fn sample_shift(rng: &mut impl Rng, padding: usize) -> Self {
        let pad = padding as i32;
        CropFlip {
            shift_x: rng.random_range(-pad..=pad),
            shift_y: rng.random_range(-pad..=pad),
            flip: false,
        }
    }
}

/// Writes one `channels × side × side` `u8` image into `out` as normalised `f32`, applying
/// `crop` (use [`CropFlip::IDENTITY`] for evaluation). `table` comes from
/// [`Normalize::byte_table`].
pub fn crop_flip_normalize(
    src: &[u8],
    channels: usize,
    side: usize,
    crop: CropFlip,
    table: &[[f32; 256]; 3],
    out: &mut [f32],
) {
    let plane = side * side;
    debug_assert!(channels <= 3);
    debug_assert_eq!(src.len(), channels * plane);
    debug_assert_eq!(out.len(), channels * plane);
    let side_i = side as i32;
    // Output columns whose source column lies inside the image.
    let (x_lo, x_hi) = valid_range(side_i, crop.shift_x);
    for channel in 0..channels {
        let lut = &table[channel];
        let zero = lut[0];
        let src_plane = &src[channel * plane..(channel + 1) * plane];
        let out_plane = &mut out[channel * plane..(channel + 1) * plane];
        for (y, out_row) in out_plane.chunks_exact_mut(side).enumerate() {
            let sy = y as i32 + crop.shift_y;
            if sy < 0 || sy >= side_i {
                out_row.fill(zero);
                continue;
            }
            let src_row = &src_plane[sy as usize * side..(sy as usize + 1) * side];
            // Columns before/after the valid band are padding.
            let (lo, hi) = if crop.flip {
                // x' = side-1-x must lie in [x_lo, x_hi)  <=>  x in (side-1-x_hi, side-1-x_lo]
                (side_i - x_hi, side_i - x_lo)
            } else {
                (x_lo, x_hi)
            };
            let (lo, hi) = (lo.max(0) as usize, hi.min(side_i).max(0) as usize);
            out_row[..lo].fill(zero);
            out_row[hi.max(lo)..].fill(zero);
            if crop.flip {
                for (x, slot) in out_row.iter_mut().enumerate().take(hi).skip(lo) {
                    let sx = (side - 1 - x) as i32 + crop.shift_x;
                    *slot = lut[src_row[sx as usize] as usize];
                }
            } else {
                let start = (lo as i32 + crop.shift_x) as usize;
                for (slot, &byte) in out_row[lo..hi.max(lo)].iter_mut().zip(&src_row[start..]) {
                    *slot = lut[byte as usize];
                }
            }
        }
    }
}

/// Output positions `x` (before flipping) with `0 <= x + shift < side`.
fn valid_range(side: i32, shift: i32) -> (i32, i32) {
    ((-shift).max(0), (side - shift).min(side))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_table() -> [[f32; 256]; 3] {
        // mean 0, std 1/255 maps byte b to exactly b.
        Normalize::new([0.0; 3], [1.0 / 255.0; 3]).byte_table()
    }

    /// Reference implementation straight from the definition, on a padded canvas.
    fn reference(src: &[u8], side: usize, crop: CropFlip) -> Vec<f32> {
        let mut out = vec![0f32; src.len()];
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let xs = if crop.flip { side - 1 - x } else { x } as i32 + crop.shift_x;
                    let ys = y as i32 + crop.shift_y;
                    let inside = (0..side as i32).contains(&xs) && (0..side as i32).contains(&ys);
                    out[c * side * side + y * side + x] = if inside {
                        src[c * side * side + ys as usize * side + xs as usize] as f32
                    } else {
                        0.0
                    };
                }
            }
        }
        out
    }

    #[test]
    fn fused_crop_flip_matches_the_definition_for_every_shift() {
        let side = 8;
        let src: Vec<u8> = (0..3 * side * side).map(|i| (i % 251 + 1) as u8).collect();
        let table = identity_table();
        let mut out = vec![0f32; src.len()];
        for shift_x in -4..=4 {
            for shift_y in -4..=4 {
                for flip in [false, true] {
                    let crop = CropFlip {
                        shift_x,
                        shift_y,
                        flip,
                    };
                    crop_flip_normalize(&src, 3, side, crop, &table, &mut out);
                    for (a, b) in out.iter().zip(reference(&src, side, crop)) {
                        assert!((a - b).abs() < 1e-3, "{crop:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn digit_shifts_never_mirror_and_cover_the_one_pixel_square() {
        let mut rng = seeded_rng(&[3, 4]);
        let mut seen = [[false; 3]; 3];
        for _ in 0..500 {
            let c = CropFlip::sample_shift(&mut rng, 1);
            assert!(!c.flip, "a mirrored digit is another glyph");
            assert!(c.shift_x.abs() <= 1 && c.shift_y.abs() <= 1, "{c:?}");
            seen[(c.shift_y + 1) as usize][(c.shift_x + 1) as usize] = true;
        }
        assert!(seen.iter().flatten().all(|&s| s), "{seen:?}");
        // one channel: the fused pass moves the single plane as the definition says
        let side = 8;
        let src: Vec<u8> = (0..side * side).map(|i| (i * 3 % 251 + 1) as u8).collect();
        let table = identity_table();
        let mut out = vec![0f32; src.len()];
        let crop = CropFlip {
            shift_x: 1,
            shift_y: -1,
            flip: false,
        };
        crop_flip_normalize(&src, 1, side, crop, &table, &mut out);
        let mut padded = vec![0u8; 3 * side * side];
        padded[..side * side].copy_from_slice(&src);
        let want = reference(&padded, side, crop);
        for (a, b) in out.iter().zip(&want[..side * side]) {
            assert!((a - b).abs() < 1e-3);
        }
    }

    #[test]
    fn sampled_shifts_stay_within_padding_and_cover_it() {
        let mut rng = seeded_rng(&[1, 2]);
        let mut seen_x = [false; 9];
        let mut flips = 0;
        for _ in 0..2000 {
            let crop = CropFlip::sample(&mut rng, 4);
            assert!(crop.shift_x.abs() <= 4 && crop.shift_y.abs() <= 4);
            seen_x[(crop.shift_x + 4) as usize] = true;
            flips += crop.flip as usize;
        }
        assert!(seen_x.iter().all(|s| *s));
        assert!((800..1200).contains(&flips), "flip rate {flips}/2000");
    }

    #[test]
    fn seeds_mix_all_parts() {
        assert_ne!(mix_seed(&[1, 2]), mix_seed(&[2, 1]));
        assert_ne!(mix_seed(&[0, 0]), mix_seed(&[0]));
        assert_eq!(mix_seed(&[7, 8, 9]), mix_seed(&[7, 8, 9]));
    }
}
