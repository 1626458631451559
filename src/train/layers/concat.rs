//! Concatenation along channels.

use super::{Grads, Pass, TrainLayer};

/// The inputs' channels one after another, per pixel.
#[derive(Debug, Clone)]
pub(crate) struct Concat;

impl TrainLayer for Concat {
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]) {
        let out = p.out_shape();
        let (total, pixels) = (out.c, out.h * out.w);
        let mut off = 0;
        for &src in p.inputs {
            let c = p.shapes[src].c;
            let x = &p.tensors[src];
            for n in 0..p.batch {
                for q in 0..pixels {
                    let d = (n * pixels + q) * total + off;
                    y[d..d + c].copy_from_slice(&x[(n * pixels + q) * c..(n * pixels + q + 1) * c]);
                }
            }
            off += c;
        }
    }

    fn backward(&self, p: &Pass<'_>, g: Grads<'_>) {
        let s = p.out_shape();
        let pixels = s.h * s.w;
        let mut off = 0;
        for &src in p.inputs {
            let c = p.shapes[src].c;
            for q in 0..p.batch * pixels {
                for k in 0..c {
                    g.dx[src][q * c + k] += g.dy[q * s.c + off + k];
                }
            }
            off += c;
        }
    }
}
