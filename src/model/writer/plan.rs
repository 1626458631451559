//! The arena plan of a model being built.

use super::ModelBuilder;
use crate::error::Result;
use crate::model::format::{self as f, align_up};
use std::vec;
use std::vec::Vec;

/// Where every tensor and scratch buffer lives in the arena.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Arena offset of each tensor.
    pub offsets: Vec<usize>,
    /// Arena offset of each op's scratch (0 when it has none).
    pub scratch: Vec<usize>,
    /// Bytes of the arena (for a 16-byte aligned start).
    pub arena_len: usize,
    /// Bytes if every tensor and scratch buffer had its own place.
    pub naive_len: usize,
    /// No plan of these buffers is smaller: the most bytes live at one op.
    pub lower_bound: usize,
}

struct Buffer {
    size: usize,
    first: usize,
    last: usize,
    members: Vec<usize>, // tensors sharing it; scratch buffers use usize::MAX - op
}

/// The arena plan of a model being built: liveness from the op order,
/// in-place outputs for ops that allow it, then greedy placement, largest
/// buffer first, at the lowest offset free over its lifetime (as TensorFlow
/// Lite Micro's greedy planner).
pub(super) fn plan(m: &ModelBuilder) -> Result<Plan> {
    let n_ops = m.ops.len();
    let bytes = |t: usize| m.tensors[t].shape.len() * m.tensors[t].ty.dtype().size();
    let producer = |t: usize| m.ops.iter().position(|o| o.output == t);
    let last_use = |t: usize| {
        let mut end = producer(t).unwrap_or(0);
        for (i, o) in m.ops.iter().enumerate() {
            if o.inputs.contains(&t) {
                end = end.max(i);
            }
        }
        if m.outputs.contains(&t) {
            end = n_ops;
        }
        end
    };
    let mut buffer_of = vec![usize::MAX; m.tensors.len()];
    let mut buffers: Vec<Buffer> = Vec::new();
    for t in 0..m.tensors.len() {
        if let Some(i) = producer(t) {
            let o = &m.ops[i];
            let src = o.inputs[0];
            let in_place = m.reuse
                && o.kind.can_run_in_place()
                && !m.inputs.contains(&src)
                && last_use(src) == i
                && bytes(src) == bytes(t)
                && !(o.inputs.len() == 2 && o.inputs[1] == src)
                && buffer_of[src] != usize::MAX;
            if in_place {
                let b = buffer_of[src];
                buffer_of[t] = b;
                buffers[b].members.push(t);
                buffers[b].last = buffers[b].last.max(last_use(t));
                continue;
            }
        }
        buffer_of[t] = buffers.len();
        buffers.push(Buffer {
            size: align_up(bytes(t), f::ARENA_ALIGN),
            first: producer(t).unwrap_or(0),
            last: last_use(t),
            members: vec![t],
        });
    }
    for (i, o) in m.ops.iter().enumerate() {
        if o.scratch > 0 {
            buffers.push(Buffer {
                size: align_up(o.scratch, f::ARENA_ALIGN),
                first: i,
                last: i,
                members: vec![usize::MAX - i],
            });
        }
    }
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&b| (std::cmp::Reverse(buffers[b].size), buffers[b].first));
    let mut placed: Vec<(usize, usize)> = Vec::new(); // (buffer, offset)
    let mut offset_of = vec![0usize; buffers.len()];
    let mut arena_len = 0;
    for &b in &order {
        let (first, last, size) = (buffers[b].first, buffers[b].last, buffers[b].size);
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(p, _)| !m.reuse || buffers[p].first.max(first) <= buffers[p].last.min(last))
            .map(|&(p, off)| (off, off + buffers[p].size))
            .collect();
        busy.sort();
        let mut at = 0;
        for (start, end) in busy {
            if at + size <= start {
                break;
            }
            at = at.max(end);
        }
        offset_of[b] = at;
        arena_len = arena_len.max(at + size);
        placed.push((b, at));
    }
    let mut offsets = vec![0; m.tensors.len()];
    let mut scratch = vec![0; n_ops];
    for (b, buf) in buffers.iter().enumerate() {
        for &member in &buf.members {
            if member < m.tensors.len() {
                offsets[member] = offset_of[b];
            } else {
                scratch[usize::MAX - member] = offset_of[b];
            }
        }
    }
    // Naive: every tensor and scratch buffer in its own place.
    let naive_len = (0..m.tensors.len())
        .map(|t| align_up(bytes(t), f::ARENA_ALIGN))
        .sum::<usize>()
        + m.ops
            .iter()
            .map(|o| align_up(o.scratch, f::ARENA_ALIGN))
            .sum::<usize>();
    let lower_bound = (0..n_ops.max(1))
        .map(|i| {
            buffers
                .iter()
                .filter(|b| b.first <= i && i <= b.last)
                .map(|b| b.size)
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    Ok(Plan {
        offsets,
        scratch,
        arena_len,
        naive_len,
        lower_bound,
    })
}
