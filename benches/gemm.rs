//! The GEMMs of LeNet-5 training (batches of 16 images), in `matrixmultiply`
//! (used by `train`) and in `gemm`, on one thread: the measurement behind the
//! choice. `cargo bench --features std --bench gemm`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

/// `(name, m, k, n)`: C (m x n) = A (m x k) B (k x n), all row-major.
const SHAPES: [(&str, usize, usize, usize); 5] = [
    ("conv1_forward", 16 * 784, 25, 6),
    ("conv1_weight_grad", 6, 16 * 784, 25),
    ("conv2_forward", 16 * 100, 150, 16),
    ("conv2_input_grad", 16 * 100, 16, 150),
    ("dense1_forward", 16, 400, 120),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    for (name, m, k, n) in SHAPES {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.1).collect();
        let mut out = vec![0f32; m * n];
        // Both compute the same product (else the timings compare nothing).
        let mut c1 = vec![0f32; m * n];
        let mut c2 = vec![0f32; m * n];
        // SAFETY: a, b, c1 and c2 hold m x k, k x n, m x n and m x n row-major values.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c1.as_mut_ptr(),
                n as isize,
                1,
            );
            gemm::gemm(
                m,
                n,
                k,
                c2.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for (x, y) in c1.iter().zip(&c2) {
            assert!(
                (x - y).abs() <= 1e-3 * (1.0 + x.abs()),
                "{name}: {x} vs {y}"
            );
        }
        g.throughput(Throughput::Elements((m * k * n) as u64));
        g.bench_function(BenchmarkId::new("matrixmultiply", name), |bench| {
            bench.iter(|| {
                // SAFETY: a, b and out hold m x k, k x n and m x n row-major values.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        out.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                };
                black_box(&out);
            })
        });
        g.bench_function(BenchmarkId::new("gemm", name), |bench| {
            bench.iter(|| {
                // SAFETY: as above; gemm takes column stride, then row stride.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        out.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                };
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
