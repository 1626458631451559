//! Max and average pooling. Both passes work on the channel vector of a
//! pixel at a time (one slice), which the compiler vectorises when channels
//! are many.

use super::{Grads, Pass, TrainLayer};
use crate::arch::taps;
use crate::ops::pool::Pool2d;

/// Max (`max`) or average pooling.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    /// Windows, strides and padding.
    pub(crate) geom: Pool2d,
    /// Max rather than average.
    pub(crate) max: bool,
}

impl TrainLayer for Pool {
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]) {
        let (x, n_x, n_y) = (p.x(), p.x_len(), p.out_shape().len());
        for n in 0..p.batch {
            self.forward_one(&x[n * n_x..(n + 1) * n_x], &mut y[n * n_y..(n + 1) * n_y]);
        }
    }

    fn backward(&self, p: &Pass<'_>, g: Grads<'_>) {
        let (x, n_x, n_y) = (p.x(), p.x_len(), p.out_shape().len());
        let dx = &mut g.dx[p.inputs[0]];
        for n in 0..p.batch {
            self.backward_one(
                &x[n * n_x..(n + 1) * n_x],
                &g.y[n * n_y..(n + 1) * n_y],
                &g.dy[n * n_y..(n + 1) * n_y],
                &mut dx[n * n_x..(n + 1) * n_x],
            );
        }
    }
}

impl Pool {
    fn forward_one(&self, x: &[f32], y: &mut [f32]) {
        let (pool, max) = (&self.geom, self.max);
        let ins = pool.input_shape();
        let c = ins.c;
        if max && is_max2(pool) {
            return for_each_max2(pool, |p, [a, b, e, f]| {
                let out = &mut y[p * c..(p + 1) * c];
                let (a, b, e, f) = (&x[a..a + c], &x[b..b + c], &x[e..e + c], &x[f..f + c]);
                for (ch, o) in out.iter_mut().enumerate() {
                    *o = a[ch].max(b[ch]).max(e[ch]).max(f[ch]);
                }
            });
        }
        pool_windows(pool, |p, ya, yb, xa, xb| {
            let out = &mut y[p * c..(p + 1) * c];
            out.fill(if max { f32::NEG_INFINITY } else { 0.0 });
            for iy in ya..yb {
                for ix in xa..xb {
                    let v = &x[(iy * ins.w + ix) * c..(iy * ins.w + ix + 1) * c];
                    if max {
                        out.iter_mut().zip(v).for_each(|(o, &v)| *o = o.max(v));
                    } else {
                        out.iter_mut().zip(v).for_each(|(o, &v)| *o += v);
                    }
                }
            }
            if !max {
                let n = ((yb - ya) * (xb - xa)) as f32;
                out.iter_mut().for_each(|o| *o /= n);
            }
        });
    }

    /// `y` is the forward output: for max pooling the gradient goes to the
    /// first pixel of the window that equals it (the first maximum).
    fn backward_one(&self, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        let (pool, max) = (&self.geom, self.max);
        let ins = pool.input_shape();
        let c = ins.c;
        if max && is_max2(pool) {
            // Branch-free: each of the four pixels takes `d` or zero.
            return for_each_max2(pool, |p, [a, _, e, _]| {
                let (m, d) = (&y[p * c..(p + 1) * c], &dy[p * c..(p + 1) * c]);
                let (xa, xb) = x[a..a + 2 * c].split_at(c);
                let (xe, xf) = x[e..e + 2 * c].split_at(c);
                let (top, bottom) = dx.split_at_mut(e);
                let (ga, gb) = top[a..a + 2 * c].split_at_mut(c);
                let (ge, gf) = bottom[..2 * c].split_at_mut(c);
                for ch in 0..c {
                    let (m, d) = (m[ch], d[ch]);
                    let ta = xa[ch] == m;
                    let tb = !ta && xb[ch] == m;
                    let te = !ta && !tb && xe[ch] == m;
                    let tf = !ta && !tb && !te && xf[ch] == m;
                    ga[ch] += if ta { d } else { 0.0 };
                    gb[ch] += if tb { d } else { 0.0 };
                    ge[ch] += if te { d } else { 0.0 };
                    gf[ch] += if tf { d } else { 0.0 };
                }
            });
        }
        pool_windows(pool, |p, ya, yb, xa, xb| {
            let (y, d) = (&y[p * c..(p + 1) * c], &dy[p * c..(p + 1) * c]);
            if max {
                for (ch, (&m, &d)) in y.iter().zip(d).enumerate() {
                    'window: for iy in ya..yb {
                        for ix in xa..xb {
                            let i = (iy * ins.w + ix) * c + ch;
                            if x[i] == m {
                                dx[i] += d;
                                break 'window;
                            }
                        }
                    }
                }
            } else {
                let n = ((yb - ya) * (xb - xa)) as f32;
                for iy in ya..yb {
                    for ix in xa..xb {
                        let i = iy * ins.w + ix;
                        for (g, &d) in dx[i * c..(i + 1) * c].iter_mut().zip(d) {
                            *g += d / n;
                        }
                    }
                }
            }
        });
    }
}

/// Calls `f(output pixel, first row, end row, first column, end column)`
/// for every window, clipped to the input.
fn pool_windows(pool: &Pool2d, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
    let (ins, outs) = (pool.input_shape(), pool.output_shape());
    let [wh, ww] = pool.window();
    let [sh, sw] = pool.stride();
    let [pt, pl] = pool.padding();
    for oy in 0..outs.h {
        let y0 = (oy * sh) as isize - pt as isize;
        let (a, b) = taps(y0, ins.h, wh, 1);
        for ox in 0..outs.w {
            let x0 = (ox * sw) as isize - pl as isize;
            let (c, d) = taps(x0, ins.w, ww, 1);
            f(
                oy * outs.w + ox,
                (y0 + a as isize) as usize,
                (y0 + b as isize) as usize,
                (x0 + c as isize) as usize,
                (x0 + d as isize) as usize,
            );
        }
    }
}

/// 2x2 windows at stride 2 without padding, LeNet's and VGG's pooling: a
/// path with the four pixels of a window named.
fn is_max2(pool: &Pool2d) -> bool {
    let (ins, outs) = (pool.input_shape(), pool.output_shape());
    pool.window() == [2, 2]
        && pool.stride() == [2, 2]
        && pool.padding() == [0, 0]
        && outs.h * 2 <= ins.h
        && outs.w * 2 <= ins.w
}

/// Calls `f(output pixel, start of each window pixel's channels)` in the
/// order the general loops visit them (row by row).
fn for_each_max2(pool: &Pool2d, mut f: impl FnMut(usize, [usize; 4])) {
    let (ins, outs) = (pool.input_shape(), pool.output_shape());
    let (c, row) = (ins.c, ins.w * ins.c);
    for oy in 0..outs.h {
        for ox in 0..outs.w {
            let a = (2 * oy * ins.w + 2 * ox) * c;
            f(oy * outs.w + ox, [a, a + c, a + row, a + row + c]);
        }
    }
}
