//! `picocnn bench`: latency of single-image inference and throughput of
//! batches on several threads, in the spirit of TensorFlow Lite's
//! `benchmark_model`.

use crate::common::{dtype_name, parse_model, read_blob, At};
use anyhow::{bail, Result};
use picocnn::model::{DType, Interpreter, Model};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The model blob.
    #[arg(long)]
    model: PathBuf,
    /// Threads for the batch runs, each with its own arena.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: u16,
    /// Images per batch for the throughput runs (0: no batch runs).
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    batch: usize,
    /// Seconds of single-image timing, and as many of batches.
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    seconds: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: BenchArgs) -> Result<()> {
    if !(a.seconds.is_finite() && a.seconds > 0.0 && a.seconds <= 3600.0) {
        bail!(
            "--seconds must be above 0 and at most 3600, not {}",
            a.seconds
        );
    }
    if a.batch > 1_000_000 {
        bail!("--batch must be at most 1000000, not {}", a.batch);
    }
    let blob = read_blob(&a.model)?;
    let model = parse_model(&blob, &a.model)?;
    let budget = Duration::from_secs_f64(a.seconds);
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(&model, &mut arena).at(a.model.display())?;
    fill_inputs(&mut it)?;
    // Warm-up: caches, page faults and the CPU's clock.
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        it.run().at("inference")?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget && times.len() < 10_000_000 {
        let t = Instant::now();
        it.run().at("inference")?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let batch = (a.batch > 0)
        .then(|| batch_rate(&model, a.batch, a.threads.into(), budget))
        .transpose()?;
    let dtype = model
        .input(0)
        .map(|t| dtype_name(model.tensor(t).dtype))
        .unwrap_or("none");
    if a.json {
        let v = serde_json::json!({
            "model": model.name(),
            "dtype": dtype,
            "path": picocnn::kernel_path(),
            "arena_bytes": model.arena_len(),
            "runs": times.len(),
            "median_us": pct(0.5),
            "p90_us": pct(0.9),
            "p99_us": pct(0.99),
            "min_us": times[0],
            "mean_us": mean,
            "images_per_s": 1e6 / mean,
            "batch": a.batch,
            "threads": a.threads,
            "batch_images_per_s": batch,
        });
        out!("{v}");
    } else {
        out!(
            "{} ({dtype}), arena {} bytes, kernels {}",
            model.name(),
            model.arena_len(),
            picocnn::kernel_path()
        );
        out!(
            "one image: median {:.1} us, p90 {:.1}, p99 {:.1}, min {:.1}, mean {:.1} ({} runs): {:.0} images/s",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            times[0],
            mean,
            times.len(),
            1e6 / mean
        );
        if let Some(rate) = batch {
            out!(
                "batches of {} on {} thread{}: {rate:.0} images/s",
                a.batch,
                a.threads,
                if a.threads == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}

/// Seeded inputs in every input tensor: any int8 code, or floats in
/// `[-1, 1)`.
fn fill_inputs(it: &mut Interpreter<'_, '_>) -> Result<()> {
    let mut rng = picocnn::rng::Rng::new(0x5eed);
    for i in 0..it.model().input_count() {
        let dtype = it.model().tensor(it.model().input(i).unwrap_or(0)).dtype;
        match dtype {
            DType::I8 => it
                .input_mut::<i8>(i)?
                .iter_mut()
                .for_each(|x| *x = rng.next_u64() as i8),
            DType::I16 => it
                .input_mut::<i16>(i)?
                .iter_mut()
                .for_each(|x| *x = rng.next_u64() as i16),
            DType::F16 => it
                .input_mut::<half::f16>(i)?
                .iter_mut()
                .for_each(|x| *x = half::f16::from_f32(rng.uniform(-1.0, 1.0))),
            DType::F32 => it
                .input_mut::<f32>(i)?
                .iter_mut()
                .for_each(|x| *x = rng.uniform(-1.0, 1.0)),
        }
    }
    Ok(())
}

/// Images per second of batches of `batch` images split over `threads`
/// threads (each with its own arena and interpreter), repeated for about
/// `budget`.
fn batch_rate(model: &Model<'_>, batch: usize, threads: usize, budget: Duration) -> Result<f64> {
    let threads = threads.min(batch);
    let start = Instant::now();
    let mut images = 0usize;
    // The threads and their arenas live for all the batches, each batch
    // between two barriers. A thread that fails keeps meeting the
    // barriers, so that none waits for ever, and reports at the end.
    let barrier = Barrier::new(threads + 1);
    let go = AtomicBool::new(true);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let (barrier, go) = (&barrier, &go);
                let share = batch * (k + 1) / threads - batch * k / threads;
                s.spawn(move || -> Result<()> {
                    let mut arena = vec![0u8; model.arena_len()];
                    let mut state = Interpreter::new(model, &mut arena)
                        .map_err(anyhow::Error::from)
                        .and_then(|mut it| fill_inputs(&mut it).map(|()| it));
                    loop {
                        barrier.wait();
                        if !go.load(Ordering::Acquire) {
                            return state.map(|_| ());
                        }
                        if let Ok(it) = &mut state {
                            for _ in 0..share {
                                if let Err(e) = it.run() {
                                    state = Err(e.into());
                                    break;
                                }
                            }
                        }
                        barrier.wait();
                    }
                })
            })
            .collect();
        loop {
            barrier.wait();
            barrier.wait();
            images += batch;
            if start.elapsed() >= budget {
                break;
            }
        }
        go.store(false, Ordering::Release);
        barrier.wait();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a batch thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect::<Result<()>>()?;
    Ok(images as f64 / start.elapsed().as_secs_f64())
}
