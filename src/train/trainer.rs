//! The training loop: seeded batches, data-parallel gradients, evaluation.

use super::net::{Net, Trainable};
use super::optim::{clip_by_norm, learning_rate, OptimState, Optimizer, Schedule};
use crate::augment::Pipeline;
use crate::data::Dataset;
use crate::rng::mix;
use rayon::prelude::*;
use std::ops::ControlFlow;
use std::time::Instant;
use std::vec;
use std::vec::Vec;

/// Images per work item, run as one batch (large GEMMs): gradients are
/// summed per item and then in item order, so results depend on the seed
/// only, not on the thread count.
const CHUNK: usize = 16;

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Base learning rate.
    pub learning_rate: f32,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Steps of linear warm-up.
    pub warmup_steps: usize,
    /// Clip the gradient's L2 norm to this, if set.
    pub clip_norm: Option<f32>,
    /// Label smoothing of the cross-entropy (0 for none).
    pub label_smoothing: f32,
    /// Seed of shuffling and dropout.
    pub seed: u64,
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// Quantization-aware training: weights rounded to int8 per output
    /// channel and activations to int8 ranges tracked during training, in
    /// the forward pass; gradients straight through the rounding.
    pub qat: bool,
    /// The parameters training changes; frozen ones keep their values
    /// exactly (their gradients are dropped and they take no weight
    /// decay), and batch-norm statistics are re-estimated only when all
    /// train.
    pub trainable: Trainable,
    /// Shuffle the training set every epoch; `false` visits it in order,
    /// as a device fine-tuning one sample at a time does.
    pub shuffle: bool,
}

impl Default for TrainConfig {
    /// Keras's usual recipe: batch 64, Adam 1e-3, 10 epochs.
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            learning_rate: 1e-3,
            optimizer: Optimizer::adam(),
            schedule: Schedule::Constant,
            warmup_steps: 0,
            clip_norm: None,
            label_smoothing: 0.0,
            seed: 1,
            threads: 0,
            qat: false,
            trainable: Trainable::All,
            shuffle: true,
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f32,
    /// Training accuracy (0..1), measured during the epoch.
    pub train_accuracy: f32,
    /// Test accuracy (0..1) after the epoch.
    pub test_accuracy: f32,
    /// Seconds the epoch took (training and evaluation).
    pub seconds: f32,
}

/// Trains networks.
#[derive(Debug, Clone)]
pub struct Trainer {
    config: TrainConfig,
    augment: Option<Pipeline>,
}

/// Softmax cross-entropy of `logits` against class `label` with label
/// smoothing `smoothing`: returns the loss and its gradient.
pub fn softmax_cross_entropy(logits: &[f32], label: usize, smoothing: f32) -> (f32, Vec<f32>) {
    let mut target = vec![0.0; logits.len()];
    if let Some(t) = target.get_mut(label) {
        *t = 1.0;
    }
    softmax_cross_entropy_soft(logits, &target, smoothing)
}

/// Softmax cross-entropy of `logits` against a distribution `target` (soft
/// labels, as mixup and cutmix make; it should sum to one), smoothed by
/// `smoothing`: returns the loss and its gradient.
pub fn softmax_cross_entropy_soft(
    logits: &[f32],
    target: &[f32],
    smoothing: f32,
) -> (f32, Vec<f32>) {
    let k = logits.len();
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let exps: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let mut loss = 0.0;
    let mut grad = vec![0.0; k];
    for i in 0..k {
        let p = exps[i] / sum;
        let t = target.get(i).copied().unwrap_or(0.0) * (1.0 - smoothing) + smoothing / k as f32;
        if t > 0.0 {
            loss -= t * (p.max(1e-30)).ln();
        }
        grad[i] = p - t;
    }
    (loss, grad)
}

/// The softmax cross-entropy of `net`'s main head for one image (`input`
/// scaled as in training) against `label`, and every parameter's gradient
/// (laid out as [`Net::params`]), in evaluation mode: the float side of one
/// fine-tuning step.
pub fn gradient(net: &Net, input: &[f32], label: usize) -> (f32, Vec<f32>) {
    let t = net.forward(input, None);
    let head = net.graph.heads[0];
    let (loss, g) = softmax_cross_entropy(&t[head], label, 0.0);
    let mut grads = vec![0.0; net.params.len()];
    net.backward(&t, &[(head, g)], None, &mut grads);
    (loss, grads)
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The images `chunk` of `data` one after another, scaled to 0..1.
fn pixels(data: &Dataset, chunk: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(chunk.len() * data.shape().len());
    for &i in chunk {
        out.extend(data.image(i).iter().map(|&p| p as f32 / 255.0));
    }
    out
}

/// Accuracy (0..1) of the main head of `net` on `data`.
pub fn accuracy(net: &Net, data: &Dataset) -> f32 {
    let head = net.graph.heads[0];
    let k = net.shape(head).len();
    let all: Vec<usize> = (0..data.len()).collect();
    let correct: usize = all
        .par_chunks(64)
        .map(|chunk| {
            let input: Vec<f32> = pixels(data, chunk);
            let t = net.forward_batch(&input, chunk.len(), None);
            chunk
                .iter()
                .enumerate()
                .filter(|&(j, &i)| argmax(&t[head][j * k..(j + 1) * k]) == data.label(i))
                .count()
        })
        .sum();
    correct as f32 / data.len().max(1) as f32
}

impl Trainer {
    /// A trainer with `config`.
    pub fn new(config: TrainConfig) -> Self {
        Trainer {
            config,
            augment: None,
        }
    }

    /// Augments every training image with `pipeline`, on the fly; each
    /// image's draw is seeded by the training seed, the epoch and the
    /// image's index, so it does not depend on the thread count.
    pub fn augment(mut self, pipeline: Pipeline) -> Self {
        self.augment = Some(pipeline);
        self
    }

    /// Trains `net` on `train`, evaluating on `test` after every epoch and
    /// calling `on_epoch` with the figures.
    pub fn fit(
        &self,
        net: &mut Net,
        train: &Dataset,
        test: &Dataset,
        on_epoch: &mut dyn FnMut(&EpochReport),
    ) -> Vec<EpochReport> {
        self.fit_from(net, train, test, 0, &mut |_, _, _| {}, &mut |_, r| {
            on_epoch(r);
            ControlFlow::Continue(())
        })
    }

    /// As [`fit`](Self::fit), starting after `done_epochs` epochs (to resume
    /// from a checkpoint: the schedule and shuffles continue where they
    /// were; the optimiser's moments start afresh), calling
    /// `on_step(step, steps_per_epoch, mean loss so far)` after every step,
    /// and `on_epoch` with the network as the epoch left it (to write a
    /// checkpoint each epoch); `on_epoch` returning `Break` ends training
    /// after that epoch (a checkpoint that cannot be written, say).
    pub fn fit_from(
        &self,
        net: &mut Net,
        train: &Dataset,
        test: &Dataset,
        done_epochs: usize,
        on_step: &mut dyn FnMut(usize, usize, f32),
        on_epoch: &mut dyn FnMut(&Net, &EpochReport) -> ControlFlow<()>,
    ) -> Vec<EpochReport> {
        let c = self.config;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(c.threads)
            .build()
            .ok();
        type Part = (Vec<f32>, f64, usize, Vec<(f32, f32)>);
        let install = |f: &(dyn Fn() -> Vec<Part> + Sync)| match &pool {
            Some(pool) => pool.install(f),
            None => f(),
        };
        let n = net.params.len();
        let trainable = net.trainable(c.trainable);
        let decay: Vec<bool> = net
            .decayed()
            .iter()
            .zip(&trainable)
            .map(|(&d, &t)| d && t)
            .collect();
        let mut state = OptimState::new(n);
        // Quantization-aware training: each quantized tensor's range, a
        // moving average of the batches' ranges.
        let quantized = if c.qat {
            net.quantized_tensors()
        } else {
            Vec::new()
        };
        let mut ranges: Vec<Option<(f32, f32)>> = vec![None; quantized.len()];
        let steps_per_epoch = train.len().div_ceil(c.batch_size.max(1));
        let total = steps_per_epoch * c.epochs;
        let mut step = done_epochs * steps_per_epoch;
        let mut reports = Vec::new();
        for epoch in done_epochs..c.epochs {
            let start = Instant::now();
            let (mut loss_sum, mut correct) = (0.0f64, 0usize);
            let batches: Vec<Vec<usize>> = if c.shuffle {
                train
                    .batches(c.batch_size, mix(c.seed ^ epoch as u64))
                    .collect()
            } else {
                let all: Vec<usize> = (0..train.len()).collect();
                all.chunks(c.batch_size.max(1))
                    .map(<[usize]>::to_vec)
                    .collect()
            };
            for batch in batches {
                let scale = 1.0 / batch.len() as f32;
                let saved = c.qat.then(|| {
                    let saved = net.params.clone();
                    net.fake_quantize_weights();
                    net.set_fake_quant(Some(ranges.clone()));
                    saved
                });
                let augment = self.augment.as_ref();
                let classes = net.shape(net.graph.heads[0]).len();
                let aug_seed = mix(c.seed ^ 0x6175_6700_0000_0000 ^ (epoch as u64) << 32);
                let net_ref = &*net;
                let parts = install(&|| {
                    batch
                        .par_chunks(CHUNK)
                        .map(|chunk| {
                            let mut grads = vec![0.0f32; n];
                            let (mut loss, mut ok) = (0.0f64, 0usize);
                            let mut input: Vec<f32> = pixels(train, chunk);
                            if let Some(p) = augment {
                                let shape = train.shape();
                                for (img, &i) in input.chunks_exact_mut(shape.len()).zip(chunk) {
                                    p.apply(img, shape, mix(aug_seed ^ i as u64));
                                }
                            }
                            let seeds: Vec<u64> = chunk
                                .iter()
                                .map(|&i| {
                                    mix(c.seed.wrapping_mul(0x1000_0001)
                                        ^ ((step as u64) << 24)
                                        ^ i as u64)
                                })
                                .collect();
                            let labels: Vec<usize> =
                                chunk.iter().map(|&i| train.label(i)).collect();
                            let soft = augment.and_then(|p| {
                                let mix_seeds: Vec<u64> =
                                    chunk.iter().map(|&i| mix(aug_seed ^ !(i as u64))).collect();
                                p.mix_batch(&mut input, train.shape(), &labels, classes, &mix_seeds)
                            });
                            let t = net_ref.forward_batch(&input, chunk.len(), Some(&seeds));
                            let mut heads = Vec::new();
                            for (h, (&head, &w)) in net_ref
                                .graph
                                .heads
                                .iter()
                                .zip(&net_ref.graph.head_weights)
                                .enumerate()
                            {
                                let k = net_ref.shape(head).len();
                                let mut hg = vec![0.0f32; k * chunk.len()];
                                for (j, &i) in chunk.iter().enumerate() {
                                    let logits = &t[head][j * k..(j + 1) * k];
                                    let (l, g) = match &soft {
                                        Some(t) if k == classes => softmax_cross_entropy_soft(
                                            logits,
                                            &t[j * k..(j + 1) * k],
                                            c.label_smoothing,
                                        ),
                                        _ => softmax_cross_entropy(
                                            logits,
                                            train.label(i),
                                            c.label_smoothing,
                                        ),
                                    };
                                    for (d, v) in hg[j * k..(j + 1) * k].iter_mut().zip(g) {
                                        *d = v * w * scale;
                                    }
                                    if h == 0 {
                                        ok += (argmax(logits) == train.label(i)) as usize;
                                    }
                                    loss += (w * l) as f64;
                                }
                                heads.push((head, hg));
                            }
                            net_ref.backward_batch(
                                &t,
                                chunk.len(),
                                &heads,
                                Some(&seeds),
                                &mut grads,
                            );
                            let seen: Vec<(f32, f32)> = if c.qat {
                                t.iter()
                                    .map(|v| {
                                        v.iter()
                                            .fold((f32::INFINITY, f32::NEG_INFINITY), |r, &x| {
                                                (r.0.min(x), r.1.max(x))
                                            })
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            };
                            (grads, loss, ok, seen)
                        })
                        .collect()
                });
                let mut grads = vec![0.0f32; n];
                let mut seen = vec![(f32::INFINITY, f32::NEG_INFINITY); quantized.len()];
                for (g, l, ok, s) in parts {
                    grads.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
                    loss_sum += l;
                    correct += ok;
                    for (a, b) in seen.iter_mut().zip(s) {
                        *a = (a.0.min(b.0), a.1.max(b.1));
                    }
                }
                if let Some(saved) = saved {
                    // The update applies to the float weights (straight through).
                    net.params = saved;
                    for ((r, &q), &(lo, hi)) in ranges.iter_mut().zip(&quantized).zip(&seen) {
                        if q && lo <= hi {
                            *r = Some(match *r {
                                None => (lo, hi),
                                Some((a, b)) => (0.95 * a + 0.05 * lo, 0.95 * b + 0.05 * hi),
                            });
                        }
                    }
                }
                // Frozen parameters: a zero gradient and no decay keep the
                // optimiser's moments at zero, so their update is exactly 0.
                grads
                    .iter_mut()
                    .zip(&trainable)
                    .filter(|(_, &t)| !t)
                    .for_each(|(g, _)| *g = 0.0);
                if let Some(max) = c.clip_norm {
                    clip_by_norm(&mut grads, max);
                }
                let lr = learning_rate(
                    c.learning_rate,
                    c.schedule,
                    c.warmup_steps,
                    step,
                    total,
                    steps_per_epoch,
                );
                state.step(c.optimizer, lr, &mut net.params, &grads, &decay);
                step += 1;
                let seen = (step - epoch * steps_per_epoch) * c.batch_size;
                on_step(
                    step - epoch * steps_per_epoch,
                    steps_per_epoch,
                    (loss_sum / seen.max(1) as f64) as f32,
                );
            }
            if !net.stats.is_empty() && c.trainable == Trainable::All {
                // Running averages during training lag behind weights that keep
                // moving; evaluate with statistics measured on the final
                // weights ("precise batch norm"), over training batches as in
                // training.
                let images: Vec<usize> = (0..train.len().min(2048)).collect();
                let net_ref = &*net;
                let per_chunk = |chunk: &[usize]| {
                    let input: Vec<f32> = pixels(train, chunk);
                    let seeds = vec![0u64; chunk.len()];
                    net_ref.batch_norm_moments(&net_ref.forward_batch(
                        &input,
                        chunk.len(),
                        Some(&seeds),
                    ))
                };
                let parts: Vec<Vec<(Vec<f32>, Vec<f32>)>> = match &pool {
                    Some(pool) => {
                        pool.install(|| images.par_chunks(CHUNK).map(per_chunk).collect())
                    }
                    None => images.par_chunks(CHUNK).map(per_chunk).collect(),
                };
                let k = parts.len() as f32;
                let mut avg: Vec<(Vec<f32>, Vec<f32>)> = parts[0]
                    .iter()
                    .map(|(m, v)| (vec![0.0; m.len()], vec![0.0; v.len()]))
                    .collect();
                for part in &parts {
                    for ((am, av), (m, v)) in avg.iter_mut().zip(part) {
                        am.iter_mut().zip(m).for_each(|(a, b)| *a += b / k);
                        av.iter_mut().zip(v).for_each(|(a, b)| *a += b / k);
                    }
                }
                net.set_running_stats(&avg);
            }
            // With quantization-aware training, measure the quantized network.
            let saved = c.qat.then(|| {
                let saved = net.params.clone();
                net.fake_quantize_weights();
                net.set_fake_quant(Some(ranges.clone()));
                saved
            });
            let test_accuracy = match &pool {
                Some(pool) => pool.install(|| accuracy(net, test)),
                None => accuracy(net, test),
            };
            if let Some(saved) = saved {
                net.params = saved;
                net.set_fake_quant(None);
            }
            let report = EpochReport {
                epoch: epoch + 1,
                train_loss: (loss_sum / train.len().max(1) as f64) as f32,
                train_accuracy: correct as f32 / train.len().max(1) as f32,
                test_accuracy,
                seconds: start.elapsed().as_secs_f32(),
            };
            let flow = on_epoch(net, &report);
            reports.push(report);
            if flow.is_break() {
                break;
            }
        }
        reports
    }
}
