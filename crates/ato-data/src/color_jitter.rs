//! torchvision's `ColorJitter(brightness, contrast, saturation, hue)` on CHW images with values
//! in [0, 1]: each factor is drawn uniformly — brightness, contrast and saturation from
//! `[1 − s, 1 + s]`, the hue shift from `[−h, h]` (a fraction of the colour wheel) — and the
//! four are applied in a random order. The ATO authors train their ImageNet ResNets with
//! `ColorJitter(0.4, 0.4, 0.4, hue = 0.2)`.

use rand::seq::SliceRandom;
use rand::Rng;

/// The jitter strengths; 0 switches a part off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColorJitter {
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    /// Maximum hue shift, in [0, 0.5].
    pub hue: f32,
}

impl Default for ColorJitter {
    /// The strength commonly used for ImageNet training (0.4 each, no hue).
    fn default() -> Self {
        ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.0,
        }
    }
}

impl ColorJitter {
    /// Applies the jitter in place to a CHW image with values in [0, 1].
    pub fn apply(&self, rng: &mut impl Rng, chw: &mut [f32]) {
        let plane = chw.len() / 3;
        let mut order = [0u8, 1, 2, 3];
        order.shuffle(rng);
        let mut draw = |strength: f32| {
            if strength > 0.0 {
                rng.random_range((1.0 - strength).max(0.0)..=1.0 + strength)
            } else {
                1.0
            }
        };
        let factors = [
            draw(self.brightness),
            draw(self.contrast),
            draw(self.saturation),
        ];
        let shift = if self.hue > 0.0 {
            rng.random_range(-self.hue..=self.hue)
        } else {
            0.0
        };
        for step in order {
            match step {
                3 if shift != 0.0 => shift_hue(chw, plane, shift),
                3 => {}
                s if factors[s as usize] == 1.0 => {}
                0 => chw
                    .iter_mut()
                    .for_each(|v| *v = (*v * factors[0]).clamp(0.0, 1.0)),
                1 => {
                    let mean_gray: f32 =
                        (0..plane).map(|i| gray(chw, plane, i)).sum::<f32>() / plane as f32;
                    chw.iter_mut()
                        .for_each(|v| *v = blend(*v, mean_gray, factors[1]));
                }
                _ => {
                    for i in 0..plane {
                        let g = gray(chw, plane, i);
                        for c in 0..3 {
                            chw[c * plane + i] = blend(chw[c * plane + i], g, factors[2]);
                        }
                    }
                }
            }
        }
    }
}

/// Rotates every pixel's hue by `shift` turns (RGB → HSV → RGB, as torchvision's
/// `adjust_hue`).
pub fn shift_hue(chw: &mut [f32], plane: usize, shift: f32) {
    for i in 0..plane {
        let (r, g, b) = (chw[i], chw[plane + i], chw[2 * plane + i]);
        let (h, s, v) = rgb_to_hsv(r, g, b);
        let (r, g, b) = hsv_to_rgb((h + shift).rem_euclid(1.0), s, v);
        chw[i] = r;
        chw[plane + i] = g;
        chw[2 * plane + i] = b;
    }
}

fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let s = if max > 0.0 { d / max } else { 0.0 };
    if d == 0.0 {
        return (0.0, s, max);
    }
    let h = if max == r {
        ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    };
    (h / 6.0, s, max)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let sector = (h6.floor() as i32).rem_euclid(6);
    let f = h6 - h6.floor();
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match sector {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[inline]
fn gray(chw: &[f32], plane: usize, i: usize) -> f32 {
    0.299 * chw[i] + 0.587 * chw[plane + i] + 0.114 * chw[2 * plane + i]
}

#[inline]
fn blend(value: f32, toward: f32, factor: f32) -> f32 {
    (factor * value + (1.0 - factor) * toward).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(rgb: [f32; 3]) -> Vec<f32> {
        rgb.to_vec()
    }

    #[test]
    fn hue_rotations_by_hand() {
        // pure red turned half a turn is cyan, a third of a turn is green
        let mut p = pixel([1.0, 0.0, 0.0]);
        shift_hue(&mut p, 1, 0.5);
        assert_eq!(p, [0.0, 1.0, 1.0]);
        let mut p = pixel([1.0, 0.0, 0.0]);
        shift_hue(&mut p, 1, 1.0 / 3.0);
        assert!(
            (p[0]).abs() < 1e-6 && (p[1] - 1.0).abs() < 1e-6 && p[2].abs() < 1e-6,
            "{p:?}"
        );
        // (0.8, 0.4, 0.2): h = 1/18, s = 0.75, v = 0.8; a shift of −1/18 gives (0.8, 0.2, 0.2)
        let mut p = pixel([0.8, 0.4, 0.2]);
        shift_hue(&mut p, 1, -1.0 / 18.0);
        for (got, want) in p.iter().zip([0.8, 0.2, 0.2]) {
            assert!((got - want).abs() < 1e-5, "{p:?}");
        }
        // grey has no hue: unchanged
        let mut p = pixel([0.3, 0.3, 0.3]);
        shift_hue(&mut p, 1, 0.25);
        assert_eq!(p, [0.3, 0.3, 0.3]);
    }

    #[test]
    fn a_hue_jitter_changes_colours_but_not_brightness_of_grey() {
        let jitter = ColorJitter {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            hue: 0.2,
        };
        let mut rng = crate::augment::seeded_rng(&[1]);
        let mut img = vec![0.9, 0.5, 0.5, 0.1, 0.5, 0.5, 0.1, 0.5, 0.5];
        let before = img.clone();
        jitter.apply(&mut rng, &mut img);
        let pixel0 = |v: &[f32]| [v[0], v[3], v[6]];
        assert_ne!(pixel0(&img), pixel0(&before), "the coloured pixel moved");
        assert_eq!([img[1], img[4], img[7]], [0.5, 0.5, 0.5], "grey stays grey");
    }

    #[test]
    fn color_jitter_keeps_values_in_unit_range_and_changes_them() {
        let mut rng = crate::augment::seeded_rng(&[4]);
        let mut chw: Vec<f32> = (0..3 * 16).map(|i| i as f32 / 47.0).collect();
        let before = chw.clone();
        ColorJitter::default().apply(&mut rng, &mut chw);
        assert!(chw.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_ne!(chw, before);
    }
}
