//! `Conv2d`: convolution, also 1x1, grouped and depthwise.
//!
//! Words: `[kh|kw, sh|sw, dh|dw, top|bottom, left|right, groups, 0, filter,
//! bias, multiplier, shift, 0]` (`a|b` packs two `u16`, `a` in the low
//! half). int8: int8 filters, int32 bias and per-channel requantization
//! tables; float: filters and bias in the op's type, `multiplier` and
//! `shift` zero. Offsets are into the data section.

use super::{
    cast, cast_mut, not_built, pack, padding, read_pads, unpack, Footprint, Io, OpRecord, Site,
    Tuned,
};
use crate::error::Result;
use crate::model::format::DType;
use crate::model::layer::Layer;
use crate::num::Real;
use crate::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat, Conv2dI8};
use crate::ops::WeightsI8;
use crate::tensor::Shape;

use half::f16;

/// Data offsets of a convolution's or dense layer's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightRefs {
    pub filter: u32,
    pub bias: u32,
    /// int8 only: Q31 multipliers and shifts per output channel.
    pub requant: Option<(u32, u32)>,
}

impl WeightRefs {
    /// Reads words 7..=10 as an op of type `dtype` uses them.
    pub fn read(p: &[u32; 12], dtype: DType) -> Self {
        WeightRefs {
            filter: p[7],
            bias: p[8],
            requant: dtype.quantized().then_some((p[9], p[10])),
        }
    }

    /// Writes words 7..=10.
    pub fn emit(&self, p: &mut [u32; 12]) {
        p[7] = self.filter;
        p[8] = self.bias;
        if let Some((m, s)) = self.requant {
            p[9] = m;
            p[10] = s;
        }
    }

    /// Checks that `weights` filters and `channels` biases (and tables) lie
    /// in the data section, and that the requantization is in range.
    pub fn check(&self, s: &Site<'_, '_>, weights: usize, channels: usize) -> Result<()> {
        // 16x8 layers hold int8 filters and int64 biases.
        let x16 = crate::ops::built::INT16 && s.op.dtype == DType::I16;
        let (size, bias) = if x16 { (1, 8) } else { (s.op.dtype.size(), 4) };
        let range = if x16 { -31..=7 } else { -31..=30 };
        s.data_ref(
            "filter outside the data section",
            self.filter,
            weights * size,
            size,
        )?;
        match self.requant {
            Some((m, sh)) => {
                s.data_ref(
                    "bias outside the data section",
                    self.bias,
                    channels * bias,
                    bias,
                )?;
                s.data_ref("multipliers outside the data section", m, channels * 4, 4)?;
                s.data_ref("shifts outside the data section", sh, channels * 4, 4)?;
                let multipliers = cast::<i32>(s.data(m, channels * 4))?;
                let shifts = cast::<i32>(s.data(sh, channels * 4))?;
                for (&m, &sh) in multipliers.iter().zip(shifts) {
                    if m < 0 || !range.contains(&sh) {
                        return Err(s.invalid("requantization out of range"));
                    }
                }
                Ok(())
            }
            None => s.data_ref(
                "bias outside the data section",
                self.bias,
                channels * size,
                size,
            ),
        }
    }

    /// The int8 weights of a checked record, with the filter or bias in
    /// RAM where `tuned` has them.
    pub fn i8<'a>(
        &self,
        s: &Site<'_, 'a>,
        tuned: Tuned<'a>,
        weights: usize,
        channels: usize,
    ) -> Result<WeightsI8<'a>> {
        let (m, sh) = self.requant.unwrap_or((0, 0));
        Ok(WeightsI8 {
            filter: match tuned.filter {
                Some(f) => f,
                None => cast(s.data(self.filter, weights))?,
            },
            bias: match tuned.bias {
                Some(b) => b,
                None => cast(s.data(self.bias, channels * 4))?,
            },
            multiplier: cast(s.data(m, channels * 4))?,
            shift: cast(s.data(sh, channels * 4))?,
        })
    }

    /// The 16x8 weights of a checked record.
    pub fn i16<'a>(
        &self,
        s: &Site<'_, 'a>,
        weights: usize,
        channels: usize,
    ) -> Result<crate::ops::x16::WeightsI16<'a>> {
        let (m, sh) = self.requant.unwrap_or((0, 0));
        Ok(crate::ops::x16::WeightsI16 {
            filter: cast(s.data(self.filter, weights))?,
            bias: cast(s.data(self.bias, channels * 8))?,
            multiplier: cast(s.data(m, channels * 4))?,
            shift: cast(s.data(sh, channels * 4))?,
        })
    }

    /// Float filters and bias of a checked record.
    pub fn float<'a, T: Real + crate::model::Element>(
        &self,
        s: &Site<'_, 'a>,
        weights: usize,
        channels: usize,
    ) -> Result<(&'a [T], &'a [T])> {
        let size = core::mem::size_of::<T>();
        Ok((
            cast(s.data(self.filter, weights * size))?,
            cast(s.data(self.bias, channels * size))?,
        ))
    }

    /// Parameters and bytes of `weights` filters and `channels` outputs.
    pub fn footprint(&self, dtype: DType, weights: usize, channels: usize) -> Footprint {
        Footprint {
            params: weights + channels,
            bytes: match dtype {
                DType::I8 => weights + super::i8_tables_len(channels),
                DType::I16 => weights + 16 * channels,
                _ => (weights + channels) * dtype.size(),
            },
        }
    }
}

/// A convolution's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conv2dRecord {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// `[top, bottom, left, right]` cells.
    pub pads: [usize; 4],
    pub groups: usize,
    pub weights: WeightRefs,
}

impl Conv2dRecord {
    /// The geometry of a checked record (no arithmetic that could fail).
    pub(crate) fn geometry(&self, s: &Site<'_, '_>) -> Conv2d {
        self.geometry_to(s.input(0).shape, s.output().shape)
    }

    /// The geometry of a checked record from `input` to `output`.
    pub(crate) fn geometry_to(&self, input: Shape, output: Shape) -> Conv2d {
        Conv2d::from_checked(
            input,
            output,
            self.kernel,
            self.stride,
            self.dilation,
            [self.pads[0], self.pads[2]],
            self.groups,
        )
    }

    /// Checks the geometry and the weights; `output`, when given, is the
    /// shape it must give.
    pub(crate) fn check_conv(&self, s: &Site<'_, '_>, output: Option<Shape>) -> Result<Conv2d> {
        let conv = Conv2d::new(self.config(s)).map_err(|_| s.invalid("conv parameters"))?;
        if output.is_some_and(|o| o != conv.output_shape()) {
            return Err(s.invalid("op output shape does not follow from its input"));
        }
        self.weights
            .check(s, conv.filter_len(), conv.output_shape().c)?;
        Ok(conv)
    }

    /// The int8 layer of a checked record over `conv`.
    pub(crate) fn layer_i8<'a>(
        &self,
        s: &Site<'_, 'a>,
        tuned: Tuned<'a>,
        conv: Conv2d,
    ) -> Result<Conv2dI8<'a>> {
        let weights = self
            .weights
            .i8(s, tuned, conv.filter_len(), conv.output_shape().c)?;
        let (in_q, out_q) = (Site::qparams(s.input(0)), Site::qparams(s.output()));
        Ok(Conv2dI8::from_checked(
            conv,
            weights,
            in_q.zero_point,
            out_q.zero_point,
            s.op.activation.range_i8(out_q),
        ))
    }

    /// The float layer of a checked record over `conv`.
    pub(crate) fn layer_float<'a, T: Real + crate::model::Element>(
        &self,
        s: &Site<'_, 'a>,
        conv: Conv2d,
    ) -> Result<Conv2dFloat<'a, T>> {
        let (filter, bias) =
            self.weights
                .float::<T>(s, conv.filter_len(), conv.output_shape().c)?;
        Ok(Conv2dFloat::from_checked(
            conv,
            filter,
            bias,
            s.op.activation,
        ))
    }

    fn config(&self, s: &Site<'_, '_>) -> Conv2dConfig {
        Conv2dConfig {
            input: s.input(0).shape,
            out_channels: s.output().shape.c,
            kernel: self.kernel,
            stride: self.stride,
            dilation: self.dilation,
            padding: padding(self.pads),
            groups: self.groups,
        }
    }

    fn run_float<T: Real + crate::model::Element>(
        &self,
        s: &Site<'_, '_>,
        conv: Conv2d,
        io: Io<'_>,
    ) -> Result<()> {
        self.layer_float::<T>(s, conv)?
            .run(cast(io.input(s, 0)?)?, cast_mut(io.out)?)
    }
}

impl OpRecord for Conv2dRecord {
    fn read(op: &crate::model::OpInfo<'_>) -> Self {
        let p = &op.params;
        Conv2dRecord {
            kernel: unpack(p[0]),
            stride: unpack(p[1]),
            dilation: unpack(p[2]),
            pads: read_pads(p, 3),
            groups: p[5] as usize,
            weights: WeightRefs::read(p, op.dtype),
        }
    }

    fn emit(&self) -> Result<[u32; 12]> {
        let [top, bottom, left, right] = self.pads;
        let mut p = [0u32; 12];
        p[0] = pack(self.kernel[0], self.kernel[1])?;
        p[1] = pack(self.stride[0], self.stride[1])?;
        p[2] = pack(self.dilation[0], self.dilation[1])?;
        p[3] = pack(top, bottom)?;
        p[4] = pack(left, right)?;
        p[5] = u32::try_from(self.groups).map_err(|_| crate::Error::Overflow)?;
        self.weights.emit(&mut p);
        Ok(p)
    }

    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        self.check_conv(s, Some(s.output().shape)).map(|_| ())
    }

    fn layer(&self, s: &Site<'_, '_>) -> Layer {
        Layer::Conv2d {
            out_channels: s.output().shape.c,
            kernel: self.kernel,
            stride: self.stride,
            dilation: self.dilation,
            padding: padding(self.pads),
            groups: self.groups,
            activation: s.op.activation,
        }
    }

    fn macs(&self, s: &Site<'_, '_>) -> usize {
        self.geometry(s).macs()
    }

    fn scratch_len(&self, s: &Site<'_, '_>) -> usize {
        match s.op.dtype {
            DType::I8 => self.geometry(s).scratch_len_i8(),
            _ => 0,
        }
    }

    fn footprint(&self, s: &Site<'_, '_>) -> Footprint {
        let conv = self.geometry(s);
        self.weights
            .footprint(s.op.dtype, conv.filter_len(), conv.output_shape().c)
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        let conv = self.geometry(s);
        match s.op.dtype {
            DType::I8 if crate::ops::built::INT8 => self
                .layer_i8(s, io.tuned, conv)?
                .run_with::<true>(cast(io.input(s, 0)?)?, cast_mut(io.out)?, io.scratch),
            DType::F32 if crate::ops::built::F32 => self.run_float::<f32>(s, conv, io),
            DType::F16 if crate::ops::built::F16 => self.run_float::<f16>(s, conv, io),
            DType::I16 if crate::ops::built::INT16 => {
                let w = self
                    .weights
                    .i16(s, conv.filter_len(), conv.output_shape().c)?;
                let clamp = s.op.activation.range_i16(Site::qparams(s.output()));
                crate::ops::x16::conv(&conv, &w, clamp, cast(io.input(s, 0)?)?, cast_mut(io.out)?)
            }
            dtype => Err(not_built(dtype)),
        }
    }
}

/// Writing the op with [`ModelBuilder`](crate::model::writer::ModelBuilder).
#[cfg(feature = "std")]
mod build {
    use super::*;
    use crate::error::{Error, Result};
    use crate::model::format::{DType, OpKind};
    use crate::model::writer::{ModelBuilder, TensorId, TensorType, Weights};
    use crate::quant::Activation;

    use crate::model::writer::pads;
    use crate::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat, Conv2dI8};

    impl ModelBuilder {
        /// Appends a layer's weights to the data section.
        pub(in crate::model) fn push_weights(&mut self, w: &Weights) -> Result<WeightRefs> {
            Ok(match w {
                Weights::I8 {
                    filter,
                    bias,
                    multiplier,
                    shift,
                } => WeightRefs {
                    filter: self.push_data(filter, |x| vec![x as u8])?,
                    bias: self.push_i32(bias)?,
                    // The blob is per channel: a per-tensor value repeats.
                    requant: Some((
                        self.push_i32(&per_channel(multiplier, bias.len()))?,
                        self.push_i32(&per_channel(shift, bias.len()))?,
                    )),
                },
                Weights::F32 { filter, bias } => WeightRefs {
                    filter: self.push_data(filter, |x| x.to_le_bytes().to_vec())?,
                    bias: self.push_data(bias, |x| x.to_le_bytes().to_vec())?,
                    requant: None,
                },
                Weights::F16 { filter, bias } => WeightRefs {
                    filter: self.push_data(filter, |x| x.to_le_bytes().to_vec())?,
                    bias: self.push_data(bias, |x| x.to_le_bytes().to_vec())?,
                    requant: None,
                },
                Weights::I16 {
                    filter,
                    bias,
                    multiplier,
                    shift,
                    ..
                } => WeightRefs {
                    filter: self.push_data(filter, |x| vec![x as u8])?,
                    bias: self.push_data(bias, |x| x.to_le_bytes().to_vec())?,
                    requant: Some((
                        self.push_i32(&per_channel(multiplier, bias.len()))?,
                        self.push_i32(&per_channel(shift, bias.len()))?,
                    )),
                },
            })
        }

        /// A convolution. `config.input` must be the input tensor's shape; for
        /// int8, `output` gives the output's quantization.
        pub fn conv2d(
            &mut self,
            name: &str,
            input: TensorId,
            config: Conv2dConfig,
            activation: Activation,
            weights: Weights,
            output: TensorType,
        ) -> Result<TensorId> {
            let x = self.get(input)?.clone();
            if config.input != x.shape {
                return Err(Error::ShapeMismatch {
                    what: "conv config input",
                    expected: x.shape.len(),
                    got: config.input.len(),
                });
            }
            let dtype = weights.dtype();
            self.same_dtype(&[input], dtype)?;
            if output.dtype() != dtype {
                return Err(Error::Unsupported {
                    what: "layer mixes element types",
                });
            }
            let conv = Conv2d::new(config)?;
            weights.check(
                x.ty,
                output,
                activation,
                |w, zi, zo, clamp| Conv2dI8::new(conv, w, zi, zo, clamp).map(|_| ()),
                |f, b| Conv2dFloat::new(conv, f, b, activation).map(|_| ()),
                |f, b| Conv2dFloat::new(conv, f, b, activation).map(|_| ()),
                (conv.filter_len(), conv.output_shape().c),
            )?;
            let [top, bottom, left, right] = pads(
                conv.input_shape(),
                conv.output_shape(),
                conv.kernel(),
                conv.stride(),
                conv.dilation(),
                conv.padding(),
            );
            let params = Conv2dRecord {
                kernel: conv.kernel(),
                stride: conv.stride(),
                dilation: conv.dilation(),
                pads: [top, bottom, left, right],
                groups: conv.groups(),
                weights: self.push_weights(&weights)?,
            }
            .emit()?;
            let scratch = if dtype == DType::I8 {
                conv.scratch_len_i8()
            } else {
                0
            };
            Ok(self.op(
                OpKind::Conv2d,
                dtype,
                activation,
                &[input],
                (conv.output_shape(), output),
                name,
                params,
                scratch,
            ))
        }
    }

    /// `v` with one entry per channel.
    fn per_channel(v: &[i32], channels: usize) -> Vec<i32> {
        match v {
            [one] => std::vec![*one; channels],
            _ => v.to_vec(),
        }
    }
}
