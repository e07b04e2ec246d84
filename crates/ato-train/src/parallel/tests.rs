//! Data-parallel equivalence: k SGD steps on N thread ranks, each on 1/N of the batch, against
//! one rank on the whole batch; and the negative control without the all-reduce.

use super::*;
use ato_models::{Model, ModelConfig, ModelName};
use candle_core::{Device, Tensor};
use std::thread;

const BATCH: usize = 8;
const STEPS: usize = 3;
const LR: f64 = 0.05;

fn batch() -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..BATCH * 3 * 32 * 32)
        .map(|i| ((i * 7919 % 2003) as f32 / 1001.5) - 1.0)
        .collect();
    let y: Vec<u32> = (0..BATCH as u32).map(|i| (i * 3) % 10).collect();
    (
        Tensor::from_vec(x, (BATCH, 3, 32, 32), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, BATCH, &Device::Cpu).unwrap(),
    )
}

/// The weights of each rank after STEPS steps on `world` ranks (eval-mode BatchNorm).
fn train_on_ranks(world: usize, reduce: bool) -> Vec<Vec<f32>> {
    let (x, y) = batch();
    let handles: Vec<_> = ThreadCommunicator::group(world)
        .into_iter()
        .map(|comm| {
            let (x, y) = (x.clone(), y.clone());
            thread::spawn(move || {
                let mut config = ModelConfig::new(ModelName::Resnet20, 10, 32);
                config.base_width = Some(4);
                let model = Model::new(&config, &Device::Cpu, 0).unwrap();
                let vars: Vec<Var> = model.trainable_vars().into_iter().map(|(_, v)| v).collect();
                let shard = BATCH / world;
                let xs = x.narrow(0, comm.rank() * shard, shard).unwrap();
                let ys = y.narrow(0, comm.rank() * shard, shard).unwrap();
                for _ in 0..STEPS {
                    let logits = model.forward_t(&xs, None, false).unwrap();
                    let loss = candle_nn::loss::cross_entropy(&logits, &ys).unwrap();
                    sgd_step(&comm, &vars, &loss, LR, reduce).unwrap();
                }
                let mut flat = Vec::new();
                for v in &vars {
                    flat.extend(
                        v.as_tensor()
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f32>()
                            .unwrap(),
                    );
                }
                flat
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn two_and_four_ranks_on_shards_match_one_rank_on_the_whole_batch() {
    let one = train_on_ranks(1, true).remove(0);
    let start = train_on_ranks(1, true).remove(0);
    assert_eq!(one, start, "one rank is deterministic");
    for world in [2, 4] {
        let ranks = train_on_ranks(world, true);
        for r in &ranks[1..] {
            assert_eq!(r, &ranks[0], "{world} ranks hold bit-identical weights");
        }
        let d = max_diff(&ranks[0], &one);
        assert!(d < 1e-5, "{world} ranks vs one rank: max |Δw| = {d}");
    }
}

#[test]
fn without_the_all_reduce_ranks_diverge_from_the_whole_batch() {
    let one = train_on_ranks(1, true).remove(0);
    let ranks = train_on_ranks(2, false);
    assert!(
        max_diff(&ranks[0], &ranks[1]) > 1e-4,
        "shards give different updates"
    );
    assert!(max_diff(&ranks[0], &one) > 1e-4);
}

#[test]
fn all_reduce_sums_in_rank_order_and_broadcast_copies_the_root() {
    let out: Vec<(Vec<f32>, Vec<f32>)> = ThreadCommunicator::group(4)
        .into_iter()
        .map(|comm| {
            thread::spawn(move || {
                let r = comm.rank() as f32;
                let mut sum = vec![r, 2.0 * r];
                comm.all_reduce_sum(&mut sum).unwrap();
                // A controller mask: only rank 2's counts.
                let mut mask = vec![r; 3];
                if comm.rank() == 2 {
                    mask = vec![1.0, 0.0, 1.0];
                }
                comm.broadcast(&mut mask, 2).unwrap();
                (sum, mask)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (sum, mask) in out {
        assert_eq!(sum, vec![6.0, 12.0]); // 0+1+2+3, 2·(0+1+2+3)
        assert_eq!(mask, vec![1.0, 0.0, 1.0]);
    }
}

#[test]
fn mismatched_lengths_are_an_error_on_every_rank_not_a_hang() {
    let errors: Vec<String> = ThreadCommunicator::group(2)
        .into_iter()
        .map(|comm| {
            thread::spawn(move || {
                let mut data = vec![0.0; 2 + comm.rank()];
                comm.all_reduce_sum(&mut data).unwrap_err().to_string()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(
        errors.iter().all(|e| e.contains("all_reduce: rank")),
        "{errors:?}"
    );
}

#[test]
fn a_departed_rank_breaks_the_group_instead_of_a_hang() {
    // rank 0 waits in an all-reduce; rank 1 leaves without joining it
    let mut group = ThreadCommunicator::group(2);
    let gone = group.pop().unwrap();
    let rank0 = group.pop().unwrap();
    let waiting = thread::spawn(move || {
        let mut data = vec![1.0];
        let e = rank0.all_reduce_sum(&mut data).unwrap_err().to_string();
        // and every later collective fails at once
        let again = rank0.broadcast(&mut data, 0).unwrap_err().to_string();
        (e, again)
    });
    thread::sleep(std::time::Duration::from_millis(50));
    drop(gone);
    let (e, again) = waiting.join().unwrap();
    assert!(e.contains("rank 1 of 2 stopped"), "{e}");
    assert!(again.contains("rank 1 of 2 stopped"), "{again}");
    // control: a whole group completes the same call
    let out: Vec<Vec<f32>> = ThreadCommunicator::group(2)
        .into_iter()
        .map(|c| {
            thread::spawn(move || {
                let mut data = vec![1.0];
                c.all_reduce_sum(&mut data).unwrap();
                data
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(out, vec![vec![2.0], vec![2.0]]);
}
