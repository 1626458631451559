//! Augmentation cost per 28x28 digit, per operation and for the `digits`
//! preset, on one thread. `cargo bench --features std --bench augment`

use criterion::{criterion_group, criterion_main, Criterion};
use picocnn::augment::{Affine, Elastic, Noise, Op, Pipeline, Translate};
use picocnn::Shape;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let shape = Shape::new(28, 28, 1);
    let img: Vec<f32> = (0..shape.len())
        .map(|i| ((i * 37) % 256) as f32 / 255.0)
        .collect();
    let one = |op| Pipeline::new().then(1.0, op).expect("valid");
    let cases = [
        ("digits_preset", Pipeline::digits()),
        (
            "affine",
            one(Op::Affine(Affine {
                degrees: 10.0,
                scale: [0.9, 1.1],
                shear: 10.0,
            })),
        ),
        ("translate", one(Op::Translate(Translate { max: 2.0 }))),
        (
            "elastic",
            one(Op::Elastic(Elastic {
                alpha: 34.0,
                sigma: 4.0,
            })),
        ),
        ("noise", one(Op::Noise(Noise { sigma: 0.05 }))),
    ];
    let mut g = c.benchmark_group("augment_28x28");
    for (name, p) in &cases {
        let mut seed = 0u64;
        g.bench_function(*name, |b| {
            b.iter(|| {
                let mut x = img.clone();
                seed += 1;
                p.apply(black_box(&mut x), shape, seed);
                x
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
