//! 2-D convolution: general (any kernel, stride, padding, dilation, groups),
//! with a 1x1 pointwise fast path and a depthwise path chosen automatically.
//!
//! Tensors are NHWC with a batch of one. Filters are OHWI: `out_channels`
//! rows of `kernel_h * kernel_w * (in_channels / groups)` values.
//!
//! A depthwise convolution is `groups == in_channels` (more than one);
//! output channel `o` reads input channel `o / multiplier`. Its filters are
//! laid out as TensorFlow Lite's `DEPTHWISE_CONV_2D` keeps them, HWO:
//! `kernel_h * kernel_w` rows of `out_channels` values, so that one tap of
//! all channels is contiguous (see [`Conv2d::kind`]).
//!
//! ```
//! use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat};
//! use picocnn::ops::Padding;
//! use picocnn::{Activation, Shape};
//!
//! // 4x4x1 input, one 3x3 filter of ones, `same` padding.
//! let conv = Conv2d::new(Conv2dConfig::new(Shape::new(4, 4, 1), 1, 3, 3).padding(Padding::Same))?;
//! let filter = [1.0f32; 9];
//! let layer = Conv2dFloat::new(conv, &filter, &[0.0], Activation::None)?;
//! let input = [1.0f32; 16];
//! let mut output = [0.0f32; 16];
//! layer.run(&input, &mut output)?;
//! assert_eq!(output[0], 4.0); // a corner sees 2x2 ones
//! assert_eq!(output[5], 9.0); // an inner cell sees all nine
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::arch;
use crate::arch::{taps, ConvArgs, ConvGeom};
use crate::error::{check_len, check_min_len, invalid, Error, Result};
use crate::num::{clamp_f32, Real};
use crate::ops::{axis, built, Padding, WeightsI8};
use crate::quant::{Activation, Clamp};
use crate::tensor::Shape;

/// What a convolution should be; [`Conv2d::new`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Conv2dConfig {
    /// Input shape.
    pub input: Shape,
    /// Output channels (filters).
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Dilation `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    /// Border handling.
    pub padding: Padding,
    /// Groups: 1 for a plain convolution, 2 for AlexNet's two paths,
    /// `input.c` for depthwise.
    pub groups: usize,
}

impl Conv2dConfig {
    /// A `kernel_h` x `kernel_w` convolution to `out_channels`, stride 1, no
    /// dilation, `valid` padding, one group.
    pub const fn new(input: Shape, out_channels: usize, kernel_h: usize, kernel_w: usize) -> Self {
        Conv2dConfig {
            input,
            out_channels,
            kernel: [kernel_h, kernel_w],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Valid,
            groups: 1,
        }
    }

    /// A depthwise convolution: each input channel gets `multiplier` filters.
    pub const fn depthwise(
        input: Shape,
        multiplier: usize,
        kernel_h: usize,
        kernel_w: usize,
    ) -> Self {
        let mut c = Conv2dConfig::new(
            input,
            input.c.saturating_mul(multiplier),
            kernel_h,
            kernel_w,
        );
        c.groups = input.c;
        c
    }

    /// Sets the stride.
    pub const fn stride(mut self, vertical: usize, horizontal: usize) -> Self {
        self.stride = [vertical, horizontal];
        self
    }

    /// Sets the dilation.
    pub const fn dilation(mut self, vertical: usize, horizontal: usize) -> Self {
        self.dilation = [vertical, horizontal];
        self
    }

    /// Sets the padding.
    pub const fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the number of groups.
    pub const fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
}

/// Which loop nest runs a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConvKind {
    /// 1x1, no padding, one group: a GEMM over channels.
    Pointwise,
    /// One input channel per group, more than one group; filters are HWO.
    Depthwise,
    /// Everything else (im2col per output pixel).
    General,
}

impl ConvKind {
    /// Whether this build has this loop nest (see `PICOCNN_MODELS`).
    pub const fn built(self) -> bool {
        match self {
            ConvKind::Pointwise => built::CONV_POINTWISE,
            ConvKind::Depthwise => built::CONV_DEPTHWISE,
            ConvKind::General => built::CONV_GENERAL,
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) const fn left_out(self) -> Error {
        built::left_out(match self {
            ConvKind::Pointwise => "1x1 convolution: left out of this build (PICOCNN_MODELS)",
            ConvKind::Depthwise => "depthwise convolution: left out of this build (PICOCNN_MODELS)",
            ConvKind::General => "convolution: left out of this build (PICOCNN_MODELS)",
        })
    }
}

/// A checked convolution geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Conv2d {
    input: Shape,
    output: Shape,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
    groups: usize,
    kind: ConvKind,
}

impl Conv2d {
    /// Checks `config` and computes the output shape.
    pub fn new(config: Conv2dConfig) -> Result<Self> {
        let Conv2dConfig {
            input,
            out_channels,
            kernel,
            stride,
            dilation,
            padding,
            groups,
        } = config;
        input.validate("input shape must not be empty")?;
        if out_channels == 0 {
            return Err(invalid("out_channels must be at least 1"));
        }
        if groups == 0 || input.c % groups != 0 {
            return Err(invalid("groups must divide the input channels"));
        }
        if out_channels % groups != 0 {
            return Err(invalid("groups must divide the output channels"));
        }
        let (oh, pad_top) = axis(input.h, kernel[0], stride[0], dilation[0], padding, true)?;
        let (ow, pad_left) = axis(input.w, kernel[1], stride[1], dilation[1], padding, false)?;
        let output = Shape::new(oh, ow, out_channels);
        output.validate("output shape")?;
        // Every size the kernels index with must fit in usize and isize.
        let filter = kernel[0]
            .checked_mul(kernel[1])
            .and_then(|k| k.checked_mul(input.c / groups))
            .and_then(|k| k.checked_mul(out_channels))
            .ok_or(Error::Overflow)?;
        if filter > isize::MAX as usize / 4 || input.len() > isize::MAX as usize / 4 {
            return Err(Error::Overflow);
        }
        Ok(Conv2d::from_checked(
            input,
            output,
            kernel,
            stride,
            dilation,
            [pad_top, pad_left],
            groups,
        ))
    }

    /// A geometry from the parts a checked model record holds: `new` of
    /// the same configuration gave this output and leading padding.
    pub(crate) const fn from_checked(
        input: Shape,
        output: Shape,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        pad: [usize; 2],
        groups: usize,
    ) -> Self {
        let kind = if kernel[0] == 1 && kernel[1] == 1 && pad[0] == 0 && pad[1] == 0 && groups == 1
        {
            ConvKind::Pointwise
        } else if groups == input.c && groups > 1 {
            ConvKind::Depthwise
        } else {
            ConvKind::General
        };
        Conv2d {
            input,
            output,
            kernel,
            stride,
            dilation,
            pad,
            groups,
            kind,
        }
    }

    /// Input shape.
    pub const fn input_shape(&self) -> Shape {
        self.input
    }

    /// Output shape.
    pub const fn output_shape(&self) -> Shape {
        self.output
    }

    /// The loop nest this convolution runs; [`ConvKind::Depthwise`] also
    /// means the filters are laid out HWO rather than OHWI.
    pub const fn kind(&self) -> ConvKind {
        self.kind
    }

    /// Kernel `[height, width]`.
    pub const fn kernel(&self) -> [usize; 2] {
        self.kernel
    }

    /// Stride `[vertical, horizontal]`.
    pub const fn stride(&self) -> [usize; 2] {
        self.stride
    }

    /// Dilation `[vertical, horizontal]`.
    pub const fn dilation(&self) -> [usize; 2] {
        self.dilation
    }

    /// Leading padding `[top, left]`.
    pub const fn padding(&self) -> [usize; 2] {
        self.pad
    }

    /// Groups.
    pub const fn groups(&self) -> usize {
        self.groups
    }

    /// The geometry as the inner loops (and the fine-tuner's backward
    /// pass) take it.
    pub(crate) const fn arch_geom(&self) -> ConvGeom {
        ConvGeom {
            input: self.input,
            output: self.output,
            kernel: self.kernel,
            stride: self.stride,
            dilation: self.dilation,
            pad: self.pad,
            groups: self.groups,
        }
    }

    /// Values per filter: `kernel_h * kernel_w * in_channels / groups`.
    pub const fn filter_depth(&self) -> usize {
        self.kernel[0] * self.kernel[1] * (self.input.c / self.groups)
    }

    /// Number of filter values (`out_channels * filter_depth`).
    pub const fn filter_len(&self) -> usize {
        self.output.c * self.filter_depth()
    }

    /// Multiply-accumulates of one run, counting padded taps.
    pub const fn macs(&self) -> usize {
        self.output.len() * self.filter_depth()
    }

    /// Scratch bytes the int8 kernel needs: an int16 im2col buffer for two
    /// output pixels (zero for depthwise).
    pub const fn scratch_len_i8(&self) -> usize {
        match self.kind {
            ConvKind::Depthwise => 0,
            ConvKind::Pointwise => arch::pointwise_bytes(self.input.c),
            ConvKind::General => arch::im2col_bytes(self.filter_depth()),
        }
    }

    /// Scratch bytes the float kernels need (none).
    pub const fn scratch_len_float(&self) -> usize {
        0
    }
}

/// A ready-to-run int8 convolution (TensorFlow Lite `CONV_2D` and
/// `DEPTHWISE_CONV_2D` with per-channel quantization, bit-exact).
#[derive(Debug, Clone, Copy)]
pub struct Conv2dI8<'a> {
    geom: Conv2d,
    weights: WeightsI8<'a>,
    input_offset: i32,
    output_zero_point: i32,
    clamp: Clamp,
}

impl<'a> Conv2dI8<'a> {
    /// Checks the weights against the geometry.
    pub fn new(
        geom: Conv2d,
        weights: WeightsI8<'a>,
        input_zero_point: i32,
        output_zero_point: i32,
        clamp: Clamp,
    ) -> Result<Self> {
        weights.check(
            ["conv filter", "conv bias", "conv requantization"],
            geom.filter_len(),
            geom.output.c,
            [input_zero_point, output_zero_point],
            clamp,
        )?;
        Ok(Conv2dI8::from_checked(
            geom,
            weights,
            input_zero_point,
            output_zero_point,
            clamp,
        ))
    }

    /// From parts that `new` accepted before (a checked model record).
    pub(crate) const fn from_checked(
        geom: Conv2d,
        weights: WeightsI8<'a>,
        input_zero_point: i32,
        output_zero_point: i32,
        clamp: Clamp,
    ) -> Self {
        Conv2dI8 {
            geom,
            weights,
            input_offset: -input_zero_point,
            output_zero_point,
            clamp,
        }
    }

    /// The geometry.
    pub const fn geometry(&self) -> &Conv2d {
        &self.geom
    }

    /// Whether the requantization is per output channel (else per tensor).
    pub(crate) fn per_channel(&self) -> bool {
        self.weights.multiplier.len() == self.geom.output.c
    }

    /// The same layer over `geom`, a band of this geometry's output rows
    /// (same kernel, filters and channels).
    pub(crate) const fn with_geometry(&self, geom: Conv2d) -> Self {
        Conv2dI8 { geom, ..*self }
    }

    /// Runs the convolution. `scratch` must hold
    /// [`Conv2d::scratch_len_i8`] bytes.
    pub fn run(&self, input: &[i8], output: &mut [i8], scratch: &mut [u8]) -> Result<()> {
        if self.per_channel() {
            self.run_with::<true>(input, output, scratch)
        } else {
            self.run_with::<false>(input, output, scratch)
        }
    }

    /// [`run`](Self::run) with the quantization's granularity known: per
    /// channel (`true`, every model blob) or per tensor.
    pub(crate) fn run_with<const PER_CHANNEL: bool>(
        &self,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [u8],
    ) -> Result<()> {
        let g = &self.geom;
        check_len("conv input", g.input.len(), input.len())?;
        check_len("conv output", g.output.len(), output.len())?;
        check_min_len("conv scratch", g.scratch_len_i8(), scratch.len())?;
        let col = arch::scratch_i16(scratch);
        let k = self.kernel_args::<PER_CHANNEL>();
        match g.kind {
            ConvKind::Pointwise if built::CONV_POINTWISE => {
                arch::conv_pointwise_i8(&k, input, output, col)
            }
            ConvKind::Depthwise if built::CONV_DEPTHWISE => arch::depthwise_i8(&k, input, output),
            ConvKind::General if built::CONV_GENERAL => {
                arch::conv_general_i8(&k, input, output, col)
            }
            kind => return Err(kind.left_out()),
        }
        Ok(())
    }

    fn kernel_args<const PER_CHANNEL: bool>(&self) -> ConvArgs<'a, PER_CHANNEL> {
        let mut args = ConvArgs {
            geom: self.geom.arch_geom(),
            filter: self.weights.filter,
            bias: self.weights.bias,
            multiplier: self.weights.multiplier,
            shift: self.weights.shift,
            input_offset: self.input_offset,
            output_zero_point: self.output_zero_point,
            clamp: self.clamp,
            narrow: false,
        };
        args.narrow = args.fits_narrow(self.geom.filter_depth());
        args
    }
}

/// A ready-to-run float convolution over `f32` or `f16` tensors.
#[derive(Debug, Clone, Copy)]
pub struct Conv2dFloat<'a, T: Real> {
    geom: Conv2d,
    filter: &'a [T],
    bias: &'a [T],
    lo: f32,
    hi: f32,
}

impl<'a, T: Real> Conv2dFloat<'a, T> {
    /// Checks the filter (OHWI) and bias against the geometry.
    pub fn new(
        geom: Conv2d,
        filter: &'a [T],
        bias: &'a [T],
        activation: Activation,
    ) -> Result<Self> {
        check_len("conv filter", geom.filter_len(), filter.len())?;
        check_len("conv bias", geom.output.c, bias.len())?;
        Ok(Conv2dFloat::from_checked(geom, filter, bias, activation))
    }

    /// From parts that `new` accepted before (a checked model record).
    pub(crate) fn from_checked(
        geom: Conv2d,
        filter: &'a [T],
        bias: &'a [T],
        activation: Activation,
    ) -> Self {
        let (lo, hi) = activation.range_f32();
        Conv2dFloat {
            geom,
            filter,
            bias,
            lo,
            hi,
        }
    }

    /// The geometry.
    pub const fn geometry(&self) -> &Conv2d {
        &self.geom
    }

    /// The same layer over `geom`, a band of this geometry's output rows.
    pub(crate) fn with_geometry(&self, geom: Conv2d) -> Self {
        Conv2dFloat { geom, ..*self }
    }

    /// Runs the convolution (no scratch needed).
    pub fn run(&self, input: &[T], output: &mut [T]) -> Result<()> {
        let g = &self.geom;
        check_len("conv input", g.input.len(), input.len())?;
        check_len("conv output", g.output.len(), output.len())?;
        let hwo = g.kind == ConvKind::Depthwise;
        let range = [self.lo, self.hi];
        let (filter, bias) = (self.filter, self.bias);
        if crate::arch::conv_float(
            self.geom.arch_geom(),
            hwo,
            filter,
            bias,
            range,
            input,
            output,
        ) {
            return Ok(());
        }
        self.run_portable(input, output);
        Ok(())
    }

    /// The portable loops (the reference every vector path's bits equal),
    /// on lengths [`run`](Self::run) checked.
    pub(crate) fn run_portable(&self, input: &[T], output: &mut [T]) {
        let g = &self.geom;
        let hwo = g.kind == ConvKind::Depthwise;
        let [kh, kw] = g.kernel;
        let [dh, dw] = g.dilation;
        let cin = g.input.c;
        let cpg = cin / g.groups;
        let opg = g.output.c / g.groups;
        let depth = g.filter_depth();
        let oc = g.output.c;
        let mut out_idx = 0;
        for oy in 0..g.output.h {
            let y0 = (oy * g.stride[0]) as isize - g.pad[0] as isize;
            let (ky_lo, ky_hi) = taps(y0, g.input.h, kh, dh);
            for ox in 0..g.output.w {
                let x0 = (ox * g.stride[1]) as isize - g.pad[1] as isize;
                let (kx_lo, kx_hi) = taps(x0, g.input.w, kw, dw);
                // Adjacent taps of one filter row are adjacent in the
                // input too when undilated with one group: one dot each.
                let merged = dw == 1 && cpg == cin && kx_lo < kx_hi;
                let filter = |o: usize| &self.filter[o * depth..(o + 1) * depth];
                let mut o = 0;
                while o < oc {
                    let c0 = (o / opg) * cpg;
                    // Two channels of one group share their input's loads
                    // (and f16 conversions); each sum keeps its order.
                    if !hwo && o + 1 < oc && (o + 1) / opg == o / opg {
                        let (wa, wb) = (filter(o), filter(o + 1));
                        let mut acc = [0.0f32; 2];
                        for ky in ky_lo..ky_hi {
                            let iy = (y0 + (ky * dh) as isize) as usize;
                            if merged {
                                let ix = (x0 + kx_lo as isize) as usize;
                                let src = (iy * g.input.w + ix) * cin;
                                let n = (kx_hi - kx_lo) * cin;
                                let k = (ky * kw + kx_lo) * cpg;
                                acc = T::dot2(
                                    acc,
                                    &input[src..src + n],
                                    &wa[k..][..n],
                                    &wb[k..][..n],
                                );
                                continue;
                            }
                            for kx in kx_lo..kx_hi {
                                let ix = (x0 + (kx * dw) as isize) as usize;
                                let src = (iy * g.input.w + ix) * cin + c0;
                                let k = (ky * kw + kx) * cpg;
                                acc = T::dot2(
                                    acc,
                                    &input[src..src + cpg],
                                    &wa[k..k + cpg],
                                    &wb[k..k + cpg],
                                );
                            }
                        }
                        for (j, acc) in acc.into_iter().enumerate() {
                            let acc = acc + self.bias[o + j].to_f32();
                            output[out_idx + o + j] = T::from_f32(clamp_f32(acc, self.lo, self.hi));
                        }
                        o += 2;
                        continue;
                    }
                    let w = filter(o);
                    let mut acc = 0.0f32;
                    for ky in ky_lo..ky_hi {
                        let iy = (y0 + (ky * dh) as isize) as usize;
                        if merged {
                            let ix = (x0 + kx_lo as isize) as usize;
                            let src = (iy * g.input.w + ix) * cin;
                            let n = (kx_hi - kx_lo) * cin;
                            let wk = &w[(ky * kw + kx_lo) * cpg..][..n];
                            acc = T::dot(acc, &input[src..src + n], wk);
                            continue;
                        }
                        for kx in kx_lo..kx_hi {
                            let ix = (x0 + (kx * dw) as isize) as usize;
                            let src = (iy * g.input.w + ix) * cin + c0;
                            if hwo {
                                let wv = self.filter[(ky * kw + kx) * oc + o];
                                acc += input[src].to_f32() * wv.to_f32();
                            } else {
                                let wk = &w[(ky * kw + kx) * cpg..(ky * kw + kx + 1) * cpg];
                                acc = T::dot(acc, &input[src..src + cpg], wk);
                            }
                        }
                    }
                    acc += self.bias[o].to_f32();
                    output[out_idx + o] = T::from_f32(clamp_f32(acc, self.lo, self.hi));
                    o += 1;
                }
                out_idx += g.output.c;
            }
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::ops::dense::{Dense, DenseFloat};
    use crate::rng::Rng;
    use half::f16;

    /// A random value, now and then a signed zero, a tiny or a huge one.
    fn value(rng: &mut Rng) -> f32 {
        match rng.below(40) {
            0 => -0.0,
            1 => 0.0,
            2 => 1.0e-30,
            3 => -3.0e4,
            _ => (rng.below(20_001) as f32 - 10_000.0) / 997.0,
        }
    }

    fn values<T: Real>(rng: &mut Rng, n: usize) -> Vec<T> {
        (0..n).map(|_| T::from_f32(value(rng))).collect()
    }

    fn bits<T: Real>(v: &[T]) -> Vec<u32> {
        v.iter().map(|x| x.to_f32().to_bits()).collect()
    }

    /// Whatever path `run` takes on this CPU (channels in the vector
    /// lanes where it has them), every output has the portable loops'
    /// bits: general, 1x1, grouped, dilated and depthwise convolutions and
    /// dense layers, in `f32` and `f16`, with every activation.
    fn float_paths_equal_the_portable_loops<T: Real>(seed: u64) {
        let mut rng = Rng::new(seed);
        let r = |rng: &mut Rng, lo: usize, hi: usize| lo + rng.below((hi - lo + 1) as u64) as usize;
        for case in 0..300 {
            let (cin, oc) = (r(&mut rng, 1, 24), r(&mut rng, 1, 40));
            let (kh, kw) = (r(&mut rng, 1, 5), r(&mut rng, 1, 5));
            let (h, w) = (r(&mut rng, 2 * kh, 12), r(&mut rng, 2 * kw, 12));
            let input = Shape::new(h, w, cin);
            let activation = [Activation::None, Activation::Relu, Activation::Relu6][case % 3];
            let padding = if case % 2 == 0 {
                Padding::Same
            } else {
                Padding::Valid
            };
            let dilation = if case % 4 == 1 { 2 } else { 1 };
            let stride = r(&mut rng, 1, 2);
            let config = match case % 5 {
                0 => Conv2dConfig::depthwise(input, 1, kh, kw),
                1 if cin % 2 == 0 => Conv2dConfig::new(input, 2 * oc, kh, kw).groups(2),
                _ => Conv2dConfig::new(input, oc, kh, kw),
            };
            let config = config
                .stride(stride, r(&mut rng, 1, 2))
                .dilation(dilation, 1)
                .padding(padding);
            let Ok(geom) = Conv2d::new(config) else {
                continue;
            };
            let mut filter: Vec<T> = values(&mut rng, geom.filter_len());
            // Every seventh filter has an infinity: padding may not then
            // be taken as zeros.
            if case % 7 == 3 {
                let at = rng.below(filter.len() as u64) as usize;
                filter[at] = T::from_f32(f32::INFINITY);
            }
            let bias: Vec<T> = values(&mut rng, geom.output_shape().c);
            let x: Vec<T> = values(&mut rng, input.len());
            let conv = Conv2dFloat::new(geom, &filter, &bias, activation).unwrap();
            let mut got = vec![T::default(); geom.output_shape().len()];
            let mut want = got.clone();
            conv.run(&x, &mut got).unwrap();
            conv.run_portable(&x, &mut want);
            assert_eq!(bits(&got), bits(&want), "case {case}: {geom:?}");
            // Twice: the second run finds the packed filter.
            conv.run(&x, &mut got).unwrap();
            assert_eq!(bits(&got), bits(&want), "case {case} again");
            // A dense layer over the same values.
            let oc = bias.len();
            let n = x.len().min(filter.len() / oc);
            let dense = Dense::new(n, oc).unwrap();
            let layer = DenseFloat::new(dense, &filter[..n * oc], &bias[..oc], activation);
            let Ok(layer) = layer else { continue };
            let mut got = vec![T::default(); oc];
            let mut want = got.clone();
            layer.run(&x[..n], &mut got).unwrap();
            layer.run_portable(&x[..n], &mut want);
            assert_eq!(bits(&got), bits(&want), "case {case} dense {n} to {oc}");
        }
    }

    #[test]
    fn float_paths_equal_the_portable_loops_f32() {
        float_paths_equal_the_portable_loops::<f32>(21);
    }

    #[test]
    fn float_paths_equal_the_portable_loops_f16() {
        float_paths_equal_the_portable_loops::<f16>(22);
    }
}
