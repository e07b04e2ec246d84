//! ImageNet-style geometric transforms on decoded RGB images: torchvision's
//! `RandomResizedCrop` parameter draw, `Resize(shorter side) + CenterCrop`, an antialiased
//! separable (triangle-filter, as PIL's bilinear) crop-and-resize that writes normalised
//! `f32` CHW directly.

use rand::Rng;

use crate::augment::Normalize;

/// A source rectangle in pixel coordinates (may be fractional).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropRect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// torchvision's `RandomResizedCrop.get_params`: up to 10 tries of an area fraction in
/// `scale` and a log-uniform aspect ratio in `ratio`; then a center crop clamped to `ratio`.
pub fn random_resized_crop_rect(
    rng: &mut impl Rng,
    width: u32,
    height: u32,
    scale: (f32, f32),
    ratio: (f32, f32),
) -> CropRect {
    let (w_img, h_img) = (width as f32, height as f32);
    let area = w_img * h_img;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.random_range(scale.0..=scale.1);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target_area * aspect).sqrt().round();
        let h = (target_area / aspect).sqrt().round();
        if w > 0.0 && h > 0.0 && w <= w_img && h <= h_img {
            let x = rng.random_range(0..=(width - w as u32)) as f32;
            let y = rng.random_range(0..=(height - h as u32)) as f32;
            return CropRect {
                x,
                y,
                width: w,
                height: h,
            };
        }
    }
    let in_ratio = w_img / h_img;
    let (w, h) = if in_ratio < ratio.0 {
        (w_img, (w_img / ratio.0).round())
    } else if in_ratio > ratio.1 {
        ((h_img * ratio.1).round(), h_img)
    } else {
        (w_img, h_img)
    };
    CropRect {
        x: ((w_img - w) / 2.0).floor(),
        y: ((h_img - h) / 2.0).floor(),
        width: w,
        height: h,
    }
}

/// The source rectangle of `Resize(resize_to)` (shorter side) followed by
/// `CenterCrop(output)`, expressed in original pixel coordinates.
pub fn resize_center_crop_rect(width: u32, height: u32, resize_to: u32, output: u32) -> CropRect {
    // torchvision: the shorter side becomes `resize_to`, the longer one is truncated.
    let (short, long) = (width.min(height) as u64, width.max(height) as u64);
    let long_resized = (resize_to as u64 * long / short) as f32;
    let (resized_w, resized_h) = if width <= height {
        (resize_to as f32, long_resized)
    } else {
        (long_resized, resize_to as f32)
    };
    let (resized_w, resized_h) = (resized_w.max(output as f32), resized_h.max(output as f32));
    let left = ((resized_w - output as f32) / 2.0).round();
    let top = ((resized_h - output as f32) / 2.0).round();
    let (sx, sy) = (width as f32 / resized_w, height as f32 / resized_h);
    CropRect {
        x: left * sx,
        y: top * sy,
        width: output as f32 * sx,
        height: output as f32 * sy,
    }
}

/// Filter taps of one output coordinate: weights for source indices `start..start+len`.
struct Taps {
    starts: Vec<usize>,
    lens: Vec<usize>,
    max_len: usize,
    weights: Vec<f32>,
}

/// Triangle-filter taps mapping `[offset, offset + extent)` of a source axis of `source_len`
/// pixels onto `output_len` samples (antialiased when shrinking, like PIL's bilinear).
fn axis_taps(source_len: usize, offset: f32, extent: f32, output_len: usize) -> Taps {
    let scale = extent / output_len as f32;
    let support = scale.max(1.0);
    let max_len = (support * 2.0).ceil() as usize + 2;
    let mut taps = Taps {
        starts: Vec::with_capacity(output_len),
        lens: Vec::with_capacity(output_len),
        max_len,
        weights: vec![0.0; output_len * max_len],
    };
    for i in 0..output_len {
        let center = offset + (i as f32 + 0.5) * scale;
        let lo = ((center - support).floor().max(0.0) as usize).min(source_len - 1);
        let hi = ((center + support).ceil() as usize).clamp(lo + 1, source_len);
        let hi = hi.min(lo + max_len);
        let row = &mut taps.weights[i * max_len..(i + 1) * max_len];
        let mut total = 0.0;
        for (k, j) in (lo..hi).enumerate() {
            let distance = ((j as f32 + 0.5 - center) / support).abs();
            let w = (1.0 - distance).max(0.0);
            row[k] = w;
            total += w;
        }
        if total <= 0.0 {
            // Degenerate (crop outside the image): nearest pixel.
            row[0] = 1.0;
            total = 1.0;
        }
        for w in row.iter_mut().take(hi - lo) {
            *w /= total;
        }
        taps.starts.push(lo);
        taps.lens.push(hi - lo);
    }
    taps
}

/// Reusable buffers for [`crop_resize_into`].
#[derive(Default)]
pub struct ResizeScratch {
    rows: Vec<f32>,
}

/// Resamples `rect` of an RGB8 image (`width × height`, interleaved) to `out_w × out_h`,
/// optionally mirrored, and writes values in [0, 1] as CHW `f32` into `out`.
#[allow(clippy::too_many_arguments)]
pub fn crop_resize_into(
    rgb: &[u8],
    width: usize,
    height: usize,
    rect: CropRect,
    out_w: usize,
    out_h: usize,
    flip: bool,
    scratch: &mut ResizeScratch,
    out: &mut [f32],
) {
    debug_assert_eq!(rgb.len(), width * height * 3);
    debug_assert_eq!(out.len(), 3 * out_w * out_h);
    let xt = axis_taps(width, rect.x, rect.width, out_w);
    let yt = axis_taps(height, rect.y, rect.height, out_h);
    let row_lo = yt.starts[0];
    let row_hi = (0..out_h)
        .map(|i| yt.starts[i] + yt.lens[i])
        .max()
        .unwrap_or(row_lo);
    // Horizontal pass over the needed rows: rows[(r - row_lo)][c][ox].
    let plane = out_w;
    scratch.rows.clear();
    scratch.rows.resize((row_hi - row_lo) * 3 * plane, 0.0);
    for r in row_lo..row_hi {
        let src_row = &rgb[r * width * 3..(r + 1) * width * 3];
        let dst = &mut scratch.rows[(r - row_lo) * 3 * plane..(r - row_lo + 1) * 3 * plane];
        for ox in 0..out_w {
            let k = if flip { out_w - 1 - ox } else { ox };
            let start = xt.starts[k];
            let weights = &xt.weights[k * xt.max_len..k * xt.max_len + xt.lens[k]];
            let (mut r_acc, mut g_acc, mut b_acc) = (0f32, 0f32, 0f32);
            for (t, &w) in weights.iter().enumerate() {
                let p = &src_row[(start + t) * 3..(start + t) * 3 + 3];
                r_acc += w * p[0] as f32;
                g_acc += w * p[1] as f32;
                b_acc += w * p[2] as f32;
            }
            dst[ox] = r_acc;
            dst[plane + ox] = g_acc;
            dst[2 * plane + ox] = b_acc;
        }
    }
    // Vertical pass into CHW output, scaled to [0, 1].
    let inv = 1.0 / 255.0;
    let out_plane = out_w * out_h;
    for oy in 0..out_h {
        let start = yt.starts[oy];
        let weights = &yt.weights[oy * yt.max_len..oy * yt.max_len + yt.lens[oy]];
        for c in 0..3 {
            let dst = &mut out[c * out_plane + oy * out_w..c * out_plane + (oy + 1) * out_w];
            dst.fill(0.0);
            for (t, &w) in weights.iter().enumerate() {
                let base = (start + t - row_lo) * 3 * plane + c * plane;
                let src = &scratch.rows[base..base + out_w];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += w * s;
                }
            }
            for d in dst.iter_mut() {
                *d = (*d * inv).clamp(0.0, 1.0);
            }
        }
    }
}

/// Normalises a CHW image with values in [0, 1] in place.
pub fn normalize_unit_chw(norm: &Normalize, chw: &mut [f32]) {
    let plane = chw.len() / 3;
    for (c, values) in chw.chunks_exact_mut(plane).enumerate() {
        let (mean, inv_std) = (norm.mean[c], 1.0 / norm.std[c]);
        values.iter_mut().for_each(|v| *v = (*v - mean) * inv_std);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::seeded_rng;

    #[test]
    fn random_resized_crop_respects_bounds_scale_and_ratio() {
        let mut rng = seeded_rng(&[3]);
        for (w, h) in [(500u32, 375u32), (64, 64), (40, 300)] {
            for _ in 0..500 {
                let r = random_resized_crop_rect(&mut rng, w, h, (0.08, 1.0), (0.75, 4.0 / 3.0));
                assert!(r.x >= 0.0 && r.y >= 0.0 && r.width >= 1.0 && r.height >= 1.0);
                assert!(
                    r.x + r.width <= w as f32 && r.y + r.height <= h as f32,
                    "{r:?}"
                );
            }
        }
        // A very thin image forces the ratio-clamped center fallback.
        let r = random_resized_crop_rect(&mut rng, 400, 10, (0.9, 1.0), (0.75, 4.0 / 3.0));
        assert_eq!((r.width, r.height), (13.0, 10.0));
        assert_eq!(r.x, ((400.0f32 - 13.0) / 2.0).floor());
    }

    #[test]
    fn center_crop_rect_is_centred_and_scaled() {
        let r = resize_center_crop_rect(512, 256, 256, 224);
        // Shorter side 256 -> scale 1: a 224 window centred in 512x256.
        assert_eq!(
            r,
            CropRect {
                x: 144.0,
                y: 16.0,
                width: 224.0,
                height: 224.0
            }
        );
    }

    #[test]
    fn resize_of_a_constant_image_is_constant_and_flip_mirrors() {
        let (w, h) = (37usize, 23usize);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                rgb[(y * w + x) * 3] = 200;
                rgb[(y * w + x) * 3 + 1] = (x * 255 / (w - 1)) as u8; // left-right ramp
                rgb[(y * w + x) * 3 + 2] = 10;
            }
        }
        let rect = CropRect {
            x: 0.0,
            y: 0.0,
            width: w as f32,
            height: h as f32,
        };
        let mut scratch = ResizeScratch::default();
        let (mut a, mut b) = (vec![0f32; 3 * 64], vec![0f32; 3 * 64]);
        crop_resize_into(&rgb, w, h, rect, 8, 8, false, &mut scratch, &mut a);
        crop_resize_into(&rgb, w, h, rect, 8, 8, true, &mut scratch, &mut b);
        assert!(a[..64].iter().all(|v| (v - 200.0 / 255.0).abs() < 1e-4));
        assert!(a[128..].iter().all(|v| (v - 10.0 / 255.0).abs() < 1e-4));
        for y in 0..8 {
            for x in 0..8 {
                assert!((a[64 + y * 8 + x] - b[64 + y * 8 + 7 - x]).abs() < 1e-5);
            }
            assert!(a[64 + y * 8] < a[64 + y * 8 + 7]);
        }
    }
}
