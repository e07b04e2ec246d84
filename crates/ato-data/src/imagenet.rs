//! ImageNet laid out as class folders of images: `ROOT/train/<class>/*.JPEG` and
//! `ROOT/val/<class>/*.JPEG`. The class index is the position of the folder name in the
//! sorted list of class folders (torchvision's `ImageFolder` convention).
//!
//! Training images get `RandomResizedCrop(size, scale 0.08–1, ratio 3/4–4/3)` + horizontal
//! flip (+ optional `ColorJitter`); evaluation images get `Resize(size·256/224)` of the
//! shorter side + `CenterCrop(size)`. Both are normalised with the ImageNet mean/std.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rand::Rng;

use crate::augment::Normalize;
use crate::cifar::Split;
use crate::color_jitter::ColorJitter;
use crate::error::{one_line, DataError, Result};
use crate::resize::{
    crop_resize_into, normalize_unit_chw, random_resized_crop_rect, resize_center_crop_rect,
    ResizeScratch,
};

/// File extensions treated as images (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// What to do with an image that cannot be decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CorruptImagePolicy {
    /// Leave it out of its batch, count it and report it once on stderr (the default: one
    /// bad file among a million should not end a week-long run).
    #[default]
    Skip,
    /// Stop the epoch with an error naming the file.
    Fail,
}

/// Settings of the ImageNet pipeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageNetOptions {
    /// Side of the square output (224 for the real thing; tests use small sizes).
    pub output_size: usize,
    /// Shorter side after the evaluation resize; `None` means `output_size · 256 / 224`.
    pub resize_size: Option<usize>,
    /// Area fraction range of `RandomResizedCrop`.
    pub scale: (f32, f32),
    /// Aspect ratio range of `RandomResizedCrop`.
    pub ratio: (f32, f32),
    /// Optional colour jitter for training.
    pub color_jitter: Option<ColorJitter>,
    pub on_corrupt: CorruptImagePolicy,
}

impl Default for ImageNetOptions {
    fn default() -> Self {
        ImageNetOptions {
            output_size: 224,
            resize_size: None,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            color_jitter: None,
            on_corrupt: CorruptImagePolicy::Skip,
        }
    }
}

impl ImageNetOptions {
    /// The evaluation resize target (shorter side).
    pub fn eval_resize(&self) -> usize {
        self.resize_size
            .unwrap_or_else(|| (self.output_size as f32 * 256.0 / 224.0).round() as usize)
    }
}

/// The images of one split: sorted class names and `(path, class index)` items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolder {
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub items: Vec<(PathBuf, u32)>,
}

/// `root/train` or `root/val`.
pub fn imagenet_split_dir(root: &Path, split: Split) -> PathBuf {
    root.join(match split {
        Split::Train => "train",
        Split::Test => "val",
    })
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()).map_err(|e| DataError::io(dir, e)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

impl ImageFolder {
    /// Scans a split folder: every sub-folder is a class, every image file in it a sample.
    pub fn scan(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(DataError::MissingDir {
                path: dir.to_path_buf(),
                hint: "expected ImageNet as ROOT/train/<class>/*.JPEG and ROOT/val/<class>/*.JPEG"
                    .into(),
            });
        }
        let class_dirs: Vec<PathBuf> = sorted_entries(dir)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if class_dirs.is_empty() {
            return Err(DataError::EmptyImageFolder {
                path: dir.to_path_buf(),
                reason: "no class folders in it".into(),
            });
        }
        let mut folder = ImageFolder {
            root: dir.to_path_buf(),
            classes: Vec::with_capacity(class_dirs.len()),
            items: Vec::new(),
        };
        for (class, class_dir) in class_dirs.iter().enumerate() {
            folder.classes.push(
                class_dir
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            for path in sorted_entries(class_dir)? {
                if path.is_file() && is_image(&path) {
                    folder.items.push((path, class as u32));
                }
            }
        }
        if folder.items.is_empty() {
            return Err(DataError::EmptyImageFolder {
                path: dir.to_path_buf(),
                reason: format!("{} class folders but no image files", class_dirs.len()),
            });
        }
        Ok(folder)
    }
}

/// Decodes an image file (format sniffed from its bytes) to 8-bit RGB.
pub fn decode_rgb(path: &Path) -> Result<image::RgbImage> {
    let unreadable = |reason: String| DataError::UnreadableImage {
        path: path.to_path_buf(),
        reason,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| unreadable(one_line(e)))?;
    let decoded = reader.decode().map_err(|e| unreadable(one_line(e)))?;
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(unreadable("zero-sized image".into()));
    }
    Ok(decoded.into_rgb8())
}

/// Decodes `path` and writes one transformed, normalised CHW sample of
/// `options.output_size²` into `out`. `train` selects the augmentation.
pub fn load_image_sample(
    path: &Path,
    train: bool,
    options: &ImageNetOptions,
    norm: &Normalize,
    rng: &mut impl Rng,
    scratch: &mut ResizeScratch,
    out: &mut [f32],
) -> Result<()> {
    let rgb = decode_rgb(path)?;
    let (width, height) = rgb.dimensions();
    let size = options.output_size;
    let (rect, flip) = if train {
        let rect = random_resized_crop_rect(rng, width, height, options.scale, options.ratio);
        (rect, rng.random_bool(0.5))
    } else {
        let rect =
            resize_center_crop_rect(width, height, options.eval_resize() as u32, size as u32);
        (rect, false)
    };
    crop_resize_into(
        rgb.as_raw(),
        width as usize,
        height as usize,
        rect,
        size,
        size,
        flip,
        scratch,
        out,
    );
    if train {
        if let Some(jitter) = &options.color_jitter {
            jitter.apply(rng, out);
        }
    }
    normalize_unit_chw(norm, out);
    Ok(())
}

/// Counts and remembers images that could not be decoded.
#[derive(Debug, Default)]
pub struct CorruptImageLog {
    count: AtomicUsize,
    paths: Mutex<Vec<PathBuf>>,
}

impl CorruptImageLog {
    /// Records a failure; reports each file on stderr the first time it is seen.
    pub fn record(&self, error: &DataError) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let path = match error {
            DataError::UnreadableImage { path, .. } | DataError::Io { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        if !paths.contains(&path) {
            eprintln!("warning: skipping corrupt image: {error}");
            paths.push(path);
        }
    }

    /// How many decode failures were skipped so far (a file counts once per epoch).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The distinct files that failed.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.paths.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
