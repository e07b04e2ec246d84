//! The prefetching loader: batches as candle tensors (`f32` NCHW, normalised; labels `u32`)
//! built on background threads and handed over through bounded channels.
//!
//! Determinism: the sample order of an epoch is a Fisher–Yates shuffle seeded by
//! `(seed, epoch)`, and sample `k` of the epoch is augmented with an RNG seeded by
//! `(seed, epoch, k)`. So a batch does not depend on the number of workers, on timing, or on
//! the batch size (beyond which samples it holds). Worker `w` builds batches `w, w + W, …`
//! and the iterator reads the workers' channels round-robin, which keeps the batch order.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rayon::prelude::*;

use crate::augment::seeded_rng;
use crate::dataset::{Dataset, SampleTables};
use crate::error::{DataError, Result};
use crate::imagenet::{CorruptImageLog, CorruptImagePolicy};
use crate::resize::ResizeScratch;

/// How batches are drawn from a [`Dataset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Shuffle the order every epoch (seeded by `(seed, epoch)`).
    pub shuffle: bool,
    /// Apply the training augmentation (CIFAR: crop + flip; ImageNet: RandomResizedCrop +
    /// flip (+ jitter)). Off: the evaluation transform.
    pub augment: bool,
    /// Leave out a last, smaller batch.
    pub drop_last: bool,
    pub seed: u64,
    /// Background threads building batches; 0 builds them on the calling thread.
    pub workers: usize,
    /// Finished batches each worker may hold ahead of the consumer.
    pub prefetch: usize,
    /// The part of every batch this loader builds (data-parallel ranks); [`Shard::WHOLE`]
    /// builds whole batches.
    pub shard: Shard,
}

/// Rank `rank` of `ranks` takes rows `rank·n/ranks .. (rank+1)·n/ranks` of every batch of n
/// images. A sample's augmentation is drawn from its position in the epoch, never from the
/// rank, so the shards of all ranks are, row for row, the whole batch of one loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub ranks: usize,
}

impl Shard {
    /// The whole batch (one rank).
    pub const WHOLE: Shard = Shard { rank: 0, ranks: 1 };

    /// This shard's rows of a batch of `n`.
    pub fn rows(self, n: usize) -> std::ops::Range<usize> {
        self.rank * n / self.ranks..(self.rank + 1) * n / self.ranks
    }
}

impl LoaderConfig {
    /// Training defaults: shuffled, augmented, last partial batch dropped, 2 workers.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: true,
            augment: true,
            drop_last: true,
            seed,
            workers: 2,
            prefetch: 2,
            shard: Shard::WHOLE,
        }
    }

    /// Evaluation defaults: in order, not augmented, every sample kept, 1 worker.
    pub fn eval(batch_size: usize) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: false,
            augment: false,
            drop_last: false,
            seed: 0,
            workers: 1,
            prefetch: 2,
            shard: Shard::WHOLE,
        }
    }
}

/// One batch on the loader's device.
#[derive(Debug)]
pub struct Batch {
    /// `[n, 3, h, w]`, `f32`, normalised.
    pub images: Tensor,
    /// `[n]`, `u32`.
    pub labels: Tensor,
    /// Undecodable images left out of this batch (ImageNet with [`CorruptImagePolicy::Skip`]).
    pub skipped: usize,
}

/// Shared, immutable state of a loader; workers hold an `Arc` of it.
struct LoaderCore {
    dataset: Dataset,
    config: LoaderConfig,
    device: Device,
    tables: SampleTables,
    corrupt: CorruptImageLog,
}

/// Iterates a [`Dataset`] in batches, epoch by epoch.
#[derive(Clone)]
pub struct Loader {
    core: Arc<LoaderCore>,
}

impl Loader {
    /// A loader over `dataset` producing tensors on `device`.
    pub fn new(dataset: &Dataset, config: LoaderConfig, device: &Device) -> Result<Loader> {
        if config.batch_size == 0 {
            return Err(DataError::InvalidArgument("batch size must be > 0".into()));
        }
        let Shard { rank, ranks } = config.shard;
        if rank >= ranks || ranks > config.batch_size {
            return Err(DataError::InvalidArgument(format!(
                "shard {rank} of {ranks} of batches of {}",
                config.batch_size
            )));
        }
        Ok(Loader {
            core: Arc::new(LoaderCore {
                tables: SampleTables::new(&dataset.normalize()),
                dataset: dataset.clone(),
                config,
                device: device.clone(),
                corrupt: CorruptImageLog::default(),
            }),
        })
    }

    pub fn dataset(&self) -> &Dataset {
        &self.core.dataset
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.core.config
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let (len, batch) = (self.core.dataset.len(), self.core.config.batch_size);
        if self.core.config.drop_last {
            len / batch
        } else {
            len.div_ceil(batch)
        }
    }

    /// Samples delivered in one epoch (before any skipped corrupt images).
    pub fn samples_per_epoch(&self) -> usize {
        let (len, batch) = (self.core.dataset.len(), self.core.config.batch_size);
        if self.core.config.drop_last {
            len / batch * batch
        } else {
            len
        }
    }

    /// The dataset positions of an epoch, in delivery order.
    pub fn epoch_order(&self, epoch: u64) -> Vec<u32> {
        self.core.epoch_order(epoch)
    }

    /// Builds batch `batch` of `epoch` on the calling thread.
    pub fn load_batch(&self, epoch: u64, batch: usize) -> Result<Batch> {
        let order = self.core.epoch_order(epoch);
        self.core.build_batch(&order, epoch, batch)
    }

    /// Undecodable images skipped so far, and the distinct files.
    pub fn corrupt_images(&self) -> (usize, Vec<PathBuf>) {
        (self.core.corrupt.count(), self.core.corrupt.paths())
    }

    /// Starts the workers of `epoch` and returns the batch iterator. Dropping the iterator
    /// early stops the workers.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        let order = Arc::new(self.core.epoch_order(epoch));
        let total = self.batches_per_epoch();
        let workers = self.core.config.workers.min(total);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (sender, receiver) = sync_channel(self.core.config.prefetch.max(1));
            let core = Arc::clone(&self.core);
            let order = Arc::clone(&order);
            handles.push(std::thread::spawn(move || {
                for batch in (worker..total).step_by(workers) {
                    let result = core.build_batch(&order, epoch, batch);
                    let failed = result.is_err();
                    if sender.send(result).is_err() || failed {
                        break;
                    }
                }
            }));
            receivers.push(receiver);
        }
        EpochBatches {
            core: Arc::clone(&self.core),
            order,
            epoch,
            next: 0,
            total,
            receivers,
            handles,
        }
    }
}

impl LoaderCore {
    fn epoch_order(&self, epoch: u64) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.dataset.len() as u32).collect();
        if self.config.shuffle {
            order.shuffle(&mut seeded_rng(&[self.config.seed, epoch, 0x5_4F_FF_1E]));
        }
        order
    }

    fn build_batch(&self, order: &[u32], epoch: u64, batch: usize) -> Result<Batch> {
        let size = self.config.batch_size;
        let whole = batch * size..(batch * size + size).min(order.len());
        let rows = self.config.shard.rows(whole.len());
        let (start, end) = (whole.start + rows.start, whole.start + rows.end);
        let [c, h, w] = self.dataset.sample_shape();
        let per_sample = c * h * w;
        let count = end - start;
        let mut pixels = vec![0f32; count * per_sample];
        let mut labels = vec![0u32; count];
        let fill = |k: usize, out: &mut [f32], label: &mut u32, scratch: &mut ResizeScratch| {
            let position = start + k;
            let mut rng = seeded_rng(&[self.config.seed, epoch, position as u64]);
            let sample = order[position] as usize;
            *label = self.dataset.write_sample(
                sample,
                self.config.augment,
                &mut rng,
                &self.tables,
                scratch,
                out,
            )?;
            Ok::<(), DataError>(())
        };
        let results: Vec<Result<()>> = if self.dataset.decodes_files() {
            pixels
                .par_chunks_mut(per_sample)
                .zip(labels.par_iter_mut())
                .enumerate()
                .map_init(ResizeScratch::default, |scratch, (k, (out, label))| {
                    fill(k, out, label, scratch)
                })
                .collect()
        } else {
            let mut scratch = ResizeScratch::default();
            pixels
                .chunks_mut(per_sample)
                .zip(labels.iter_mut())
                .enumerate()
                .map(|(k, (out, label))| fill(k, out, label, &mut scratch))
                .collect()
        };
        let mut keep = Vec::with_capacity(count);
        for (k, result) in results.into_iter().enumerate() {
            match result {
                Ok(()) => keep.push(k),
                Err(e @ DataError::UnreadableImage { .. })
                    if self.dataset.corrupt_policy() == CorruptImagePolicy::Skip =>
                {
                    self.corrupt.record(&e)
                }
                Err(e) => return Err(e),
            }
        }
        let skipped = count - keep.len();
        if skipped > 0 {
            let mut packed = Vec::with_capacity(keep.len() * per_sample);
            for &k in &keep {
                packed.extend_from_slice(&pixels[k * per_sample..(k + 1) * per_sample]);
            }
            pixels = packed;
            labels = keep.iter().map(|&k| labels[k]).collect();
        }
        let n = labels.len();
        Ok(Batch {
            images: Tensor::from_vec(pixels, (n, c, h, w), &self.device)?,
            labels: Tensor::from_vec(labels, n, &self.device)?,
            skipped,
        })
    }
}

/// The batches of one epoch, in order. Yields `Err` once (then ends) if a batch fails.
pub struct EpochBatches {
    core: Arc<LoaderCore>,
    order: Arc<Vec<u32>>,
    epoch: u64,
    next: usize,
    total: usize,
    receivers: Vec<Receiver<Result<Batch>>>,
    handles: Vec<JoinHandle<()>>,
}

impl Iterator for EpochBatches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.total {
            return None;
        }
        let result = if self.receivers.is_empty() {
            self.core.build_batch(&self.order, self.epoch, self.next)
        } else {
            let receiver = &self.receivers[self.next % self.receivers.len()];
            receiver.recv().unwrap_or_else(|_| {
                Err(DataError::WorkerStopped(format!(
                    "worker for batch {} exited without a result",
                    self.next
                )))
            })
        };
        self.next = if result.is_err() {
            self.total
        } else {
            self.next + 1
        };
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total - self.next;
        (left, Some(left))
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        // Closing the channels makes every blocked worker's `send` fail, so they exit.
        self.receivers.clear();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}
