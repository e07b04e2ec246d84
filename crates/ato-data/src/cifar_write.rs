//! Writing CIFAR binary files: records encoded exactly as the originals (label byte(s), then
//! 3072 pixel bytes in CHW order), written atomically. The synthetic set and the tests use it.

use std::path::Path;

use crate::cifar::{CifarFormat, CIFAR100_COARSE_CLASSES, CIFAR_IMAGE_BYTES};
use crate::error::{DataError, Result};

/// Serialises images and labels in the format's record layout. CIFAR-100 coarse labels are
/// taken from `coarse_labels` or, when `None`, derived as `fine / 5`.
pub fn encode_cifar_records(
    format: CifarFormat,
    pixels: &[u8],
    fine_labels: &[u32],
    coarse_labels: Option<&[u32]>,
) -> Result<Vec<u8>> {
    let count = fine_labels.len();
    if pixels.len() != count * CIFAR_IMAGE_BYTES {
        return Err(DataError::InvalidArgument(format!(
            "{} pixel bytes for {count} labels (need {} per image)",
            pixels.len(),
            CIFAR_IMAGE_BYTES
        )));
    }
    if let Some(coarse) = coarse_labels {
        if coarse.len() != count {
            return Err(DataError::InvalidArgument(format!(
                "{} coarse labels for {count} images",
                coarse.len()
            )));
        }
    }
    let mut out = Vec::with_capacity(count * format.record_size());
    for (index, &fine) in fine_labels.iter().enumerate() {
        if fine as usize >= format.num_classes() {
            return Err(DataError::InvalidArgument(format!(
                "label {fine} of image {index} is out of range 0..{}",
                format.num_classes()
            )));
        }
        if format == CifarFormat::Cifar100 {
            let coarse = coarse_labels.map_or(fine / 5, |c| c[index]);
            if coarse as usize >= CIFAR100_COARSE_CLASSES {
                return Err(DataError::InvalidArgument(format!(
                    "coarse label {coarse} of image {index} is out of range 0..20"
                )));
            }
            out.push(coarse as u8);
        }
        out.push(fine as u8);
        out.extend_from_slice(&pixels[index * CIFAR_IMAGE_BYTES..(index + 1) * CIFAR_IMAGE_BYTES]);
    }
    Ok(out)
}

/// Writes one CIFAR binary file (atomically).
pub fn write_cifar_file(
    path: &Path,
    format: CifarFormat,
    pixels: &[u8],
    fine_labels: &[u32],
    coarse_labels: Option<&[u32]>,
) -> Result<()> {
    let bytes = encode_cifar_records(format, pixels, fine_labels, coarse_labels)?;
    Ok(ato_files::write_bytes(path, &bytes)?)
}
