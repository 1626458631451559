//! The backward pass of one fine-tuning step: the loss's gradient at the
//! logits, then down the chain op by op, each trained op's parameters
//! moved (or their steps written out) on the way.

use super::backward::{avg_pool, disjoint, mask, max_pool, normalize, ChannelSums, Full};
use super::chain::{align8, Op};
use super::loss::softmax_error;
use super::tuner::{word, FineTuner, NOT_KEPT};
use super::update::{input_grad, params, steps_of, update, Apply};
use crate::error::{Error, Result};
use crate::ops::pool::PoolKind;

impl FineTuner<'_, '_, '_> {
    /// The gradient area, the training buffer's parameter part and its kept
    /// copies.
    fn split(&mut self) -> (&mut [u8], &mut [u8], &[u8]) {
        let l = &self.layout;
        let (params, rest) = self.buf.split_at_mut(l.saved);
        if l.grad_in_arena {
            let area = self.interp.arena_bytes_mut(l.grad.clone());
            (area, params, &*rest)
        } else {
            let (kept, area) = rest.split_at_mut(l.grad.start - l.saved);
            (area, params, &*kept)
        }
    }

    #[inline(never)]
    pub(super) fn backward<A: Apply>(
        &mut self,
        label: usize,
        classes: usize,
        apply: &mut A,
    ) -> Result<()> {
        let model = *self.interp.model();
        let c = self.chain;
        let saved = self.layout.saved;
        let probs_at = self.layout.probs - saved;
        let (area, pbuf, kept) = self.split();
        // Where op k's parameters start in `expected_update`'s layout.
        let first_param = |pbuf: &[u8], k: usize| -> usize {
            (c.lo..k)
                .map(|j| word(pbuf, 4 * (j - c.lo) + 2) + word(pbuf, 4 * (j - c.lo) + 3))
                .sum()
        };
        let kept_at = |pbuf: &[u8], k: usize| -> Option<usize> {
            let w = word(pbuf, 4 * (k - c.lo) + 1);
            (w != NOT_KEPT).then(|| w - saved)
        };
        let lost = |k| Error::InvalidModel {
            what: "fine-tuner lost an activation",
            index: k,
        };
        // The loss's gradient at the logits.
        let front = align8(2 * classes);
        {
            let probs: &[i8] = bytemuck::cast_slice(&kept[probs_at..probs_at + classes]);
            let g: &mut [i32] = bytemuck::cast_slice_mut(&mut area[front..front + 4 * classes]);
            softmax_error(probs, label, g)?;
        }
        let mut e = normalize(area, front, classes);
        let mut result = Ok(());
        for k in (c.lo..c.softmax).rev() {
            let link = match c.link(&model, k) {
                Ok(l) => l,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            };
            let n_out = link.output.shape.len();
            let n_in = link.input.shape.len();
            let front = align8(2 * n_out);
            let bases = {
                let first = first_param(pbuf, k);
                (first, first + word(pbuf, 4 * (k - c.lo) + 2))
            };
            let (x_at, y_at, p_at) = (
                kept_at(pbuf, k),
                kept_at(pbuf, k + 1),
                word(pbuf, 4 * (k - c.lo)),
            );
            let (fa, back) = area.split_at_mut(front);
            let g: &mut [i16] = bytemuck::cast_slice_mut(&mut fa[..2 * n_out]);
            if link.mask && !(k == c.lo && c.fused.is_some()) {
                let Some(at) = y_at else {
                    result = Err(lost(k));
                    break;
                };
                mask(g, bytemuck::cast_slice(&kept[at..at + n_out]), link.clamp);
            }
            let x: Option<&[i8]> =
                x_at.map(|at| bytemuck::cast_slice(&kept[at..at + link.input.byte_len()]));
            let g: &[i16] = g;
            match (link.op, link.weights()) {
                (Op::Pool(pool, kind), _) => {
                    let x = x.unwrap_or(&[]);
                    if kind == PoolKind::Max && disjoint(&pool) {
                        let out: &mut [i16] = bytemuck::cast_slice_mut(&mut back[..2 * n_in]);
                        out.fill(0);
                        max_pool(&pool, x, g, |i, v| out[i] = v);
                        area.copy_within(front..front + 2 * n_in, 0);
                    } else {
                        let acc: &mut [i32] = bytemuck::cast_slice_mut(&mut back[..4 * n_in]);
                        acc.fill(0);
                        let pre = if kind == PoolKind::Max {
                            max_pool(&pool, x, g, |i, v| acc[i] = acc[i].wrapping_add(v as i32));
                            0
                        } else {
                            avg_pool(&pool, g, acc)
                        };
                        e += pre + normalize(area, front, n_in);
                    }
                }
                (_, None) => {}
                (_, Some(&w)) => {
                    let mut p = params(pbuf, p_at, &link);
                    let filter: &[i8] = match p.as_ref().and_then(|p| p.filter.as_deref()) {
                        Some(f) => f,
                        None => w.filter,
                    };
                    let fused = c.fused == Some(k);
                    let mut pre = 0;
                    if fused {
                        let low = match c.link(&model, c.lo) {
                            Ok(l) => l,
                            Err(err) => {
                                result = Err(err);
                                break;
                            }
                        };
                        let ch = low.output.shape.c;
                        let sums: &mut [i64] = bytemuck::cast_slice_mut(&mut back[..8 * ch]);
                        sums.fill(0);
                        let mut sink = ChannelSums {
                            mask: if low.mask {
                                x.map(|x| (x, low.clamp))
                            } else {
                                None
                            },
                            sums,
                        };
                        pre = input_grad(&link, filter, &w, g, &mut sink);
                    } else if k > c.lo {
                        let acc: &mut [i32] = bytemuck::cast_slice_mut(&mut back[..4 * n_in]);
                        acc.fill(0);
                        pre = input_grad(&link, filter, &w, g, &mut Full(acc));
                    }
                    if let Some(p) = p.as_mut() {
                        apply.at(bases.0, bases.1);
                        update(&link, p, x, g, e, apply);
                    }
                    if fused {
                        let Ok(low) = c.link(&model, c.lo) else { break };
                        let lat = word(pbuf, 0);
                        if let Some(lp) = params(pbuf, lat, &low) {
                            let ch = low.output.shape.c;
                            let sums: &[i64] = bytemuck::cast_slice(&back[..8 * ch]);
                            let (steps, lw) = (lp.steps, low.weights().copied());
                            apply.at(0, 0);
                            for (o, (b, &v)) in lp.bias.iter_mut().zip(sums).enumerate() {
                                let Some(lw) = lw.as_ref() else { break };
                                apply.bias(o, b, v, steps_of(steps, lw, o).bias, e + pre);
                            }
                        }
                        break;
                    }
                    if k > c.lo {
                        e += pre + normalize(area, front, n_in);
                    }
                }
            }
        }
        result
    }
}
