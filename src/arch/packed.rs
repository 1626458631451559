//! Filters packed with output channels in the lanes, for the SIMD loops
//! that keep sixteen channels' sums in vectors (x86-64 AVX-512 VNNI,
//! aarch64 dot products): `[block][quad][channel]`, four filter values of
//! one channel a word. A thread keeps the layers it packed: a layer met
//! again (the next inference, the next band of a fused layer) finds its
//! packing after one comparison of its bytes, and no call allocates once
//! the buffers have grown.

use core::cell::RefCell;
use std::vec::Vec;

use super::portable::ConvArgs;

/// Output channels a block holds.
pub(crate) const LANES: usize = 16;
/// Layers kept packed per thread.
const KEPT: usize = 16;
/// Filters above this many bytes are packed again on each call, so that
/// a thread keeps at most about `KEPT` times this (and the packing).
const KEPT_BYTES: usize = 1 << 20;

/// The entry of `layers` a new packing of a filter of `bytes` bytes goes
/// to (`len` gives an entry's filter bytes): a new entry while fewer than
/// `KEPT` are kept, then each in turn; filters above `KEPT_BYTES` share
/// one entry, packed again each call.
pub(crate) fn slot<L: Default>(
    layers: &mut Vec<L>,
    next: &mut usize,
    bytes: usize,
    len: impl Fn(&L) -> usize,
) -> usize {
    let big = bytes > KEPT_BYTES;
    if big {
        if let Some(i) = layers.iter().position(|l| len(l) > KEPT_BYTES) {
            return i;
        }
    }
    if big || layers.len() < KEPT {
        layers.push(L::default());
        return layers.len() - 1;
    }
    let i = *next % KEPT;
    *next = i + 1;
    i
}

/// A thread's packed layers and column buffer.
#[derive(Default)]
pub(crate) struct Work {
    pub layers: Vec<Packed>,
    /// The entry the next new layer replaces once `layers` is full.
    next: usize,
    /// Columns, or a dense layer's input, as the loops lay them out.
    pub cols: Vec<u8>,
}

std::thread_local! {
    pub(crate) static WORK: RefCell<Work> = RefCell::new(Work::default());
}

/// One layer's filter packed, and what it was made from.
#[derive(Default)]
pub(crate) struct Packed {
    /// What the packing is a function of: the filter, biases, scales,
    /// input offset (and the loop's change to it), and the depth that
    /// cuts the filter into rows.
    filter: Vec<i8>,
    bias: Vec<i32>,
    multiplier: Vec<i32>,
    shift: Vec<i32>,
    input_offset: i32,
    delta: i32,
    depth: usize,
    /// Blocks of sixteen channels: `[block][quad][channel]`, four filter
    /// values a word (zero past the depth and the channels).
    pub packed: Vec<u32>,
    /// Per block of sixteen channels: the accumulators' start and the
    /// requantization's parts.
    pub params: Vec<Params>,
}

impl Packed {
    fn made_from<const P: bool>(&self, a: &ConvArgs<'_, P>, depth: usize, delta: i32) -> bool {
        self.depth == depth
            && self.delta == delta
            && self.input_offset == a.input_offset
            && self.filter[..] == *a.filter
            && self.bias[..] == *a.bias
            && self.multiplier[..] == *a.multiplier
            && self.shift[..] == *a.shift
    }
}

/// Sixteen channels' start values and requantization (`Scale::parts`),
/// lane by lane.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
pub(crate) struct Params {
    pub init: [i32; LANES],
    pub multiplier: [i32; LANES],
    pub left: [i32; LANES],
    pub right: [i32; LANES],
    pub mask: [i32; LANES],
    pub half: [i32; LANES],
}

/// The index in `work.layers` of `a`'s packing, whose accumulators start
/// at `bias + (input offset + delta) sum(w)` (the loop multiplies `x -
/// delta` by the weights): one made before from the same bytes, else a
/// new one.
pub(crate) fn packing<const P: bool>(
    a: &ConvArgs<'_, P>,
    depth: usize,
    delta: i32,
    work: &mut Work,
) -> usize {
    if let Some(i) = work
        .layers
        .iter()
        .position(|l| l.made_from(a, depth, delta))
    {
        return i;
    }
    let i = slot(&mut work.layers, &mut work.next, a.filter.len(), |l| {
        l.filter.len()
    });
    let l = &mut work.layers[i];
    l.filter.clear();
    l.filter.extend_from_slice(a.filter);
    l.bias.clear();
    l.bias.extend_from_slice(a.bias);
    l.multiplier.clear();
    l.multiplier.extend_from_slice(a.multiplier);
    l.shift.clear();
    l.shift.extend_from_slice(a.shift);
    l.input_offset = a.input_offset;
    l.delta = delta;
    l.depth = depth;
    pack(a, depth, a.geom.output.c, delta, l);
    i
}

/// Packs the filter (`oc` rows of `depth`) and each channel's start value
/// and scale.
fn pack<const P: bool>(a: &ConvArgs<'_, P>, depth: usize, oc: usize, delta: i32, l: &mut Packed) {
    let quads = depth.div_ceil(4);
    let blocks = oc.div_ceil(LANES);
    l.packed.clear();
    l.packed.resize(blocks * quads * LANES, 0);
    l.params.clear();
    l.params.resize(blocks, Params::default());
    let off = a.input_offset.wrapping_add(delta);
    for o in 0..oc {
        let row = &a.filter[o * depth..(o + 1) * depth];
        let block = &mut l.packed[(o / LANES) * quads * LANES + o % LANES..];
        let mut sum = 0i32;
        for (q, quad) in row.chunks(4).enumerate() {
            let mut word = [0u8; 4];
            for (d, &w) in word.iter_mut().zip(quad) {
                *d = w as u8;
                sum += w as i32;
            }
            block[q * LANES] = u32::from_le_bytes(word);
        }
        let p = &mut l.params[o / LANES];
        let j = o % LANES;
        p.init[j] = a.bias[o].wrapping_add(off.wrapping_mul(sum));
        [p.multiplier[j], p.left[j], p.right[j], p.mask[j], p.half[j]] = a.requant_of(o).parts();
    }
}
