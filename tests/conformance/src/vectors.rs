//! Test vectors produced by TensorFlow Lite's reference kernels.

use crate::bump::Bump;
use picocnn::ops::act::ActI8;
use picocnn::ops::add::{AddI8, AddQuant};
use picocnn::ops::concat::{concat_i8, ConcatInputI8};
use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dI8};
use picocnn::ops::dense::{Dense, DenseI8};
use picocnn::ops::pool::{Pool2d, Pool2dConfig};
use picocnn::ops::pool::{Pool2dI8, PoolKind};
use picocnn::ops::softmax::SoftmaxI8;
use picocnn::ops::Padding;
use picocnn::ops::WeightsI8;
use picocnn::quant::{conv_requant, dense_requant_per_tensor, Activation, QParams, Rescale};
use picocnn::{Error, Shape};

/// An int8 tensor as TensorFlow Lite stored it.
pub struct Tensor {
    /// Full shape, batch included.
    pub shape: &'static [usize],
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
    /// Values, row-major.
    pub data: &'static [i8],
}

impl Tensor {
    /// The values.
    pub fn data_i8(&self) -> &'static [i8] {
        self.data
    }

    fn qparams(&self) -> Result<QParams, Error> {
        QParams::new(self.scale, self.zero_point)
    }

    /// NHWC shape with batch 1 (a 2-D tensor becomes 1x1xC).
    fn nhwc(&self) -> Result<Shape, Error> {
        match *self.shape {
            [1, h, w, c] => Ok(Shape::new(h, w, c)),
            [1, c] | [c] => Ok(Shape::flat(c)),
            _ => Err(Error::Unsupported {
                what: "vector tensor rank",
            }),
        }
    }
}

/// Filter, per-channel weight scales and bias of a conv or dense vector.
pub struct Filter {
    /// TensorFlow Lite's filter shape (OHWI, 1HWO for depthwise, OI for dense).
    pub shape: &'static [usize],
    /// Weight scale per output channel (or one for the tensor).
    pub scales: &'static [f32],
    /// Weights.
    pub data: &'static [i8],
    /// int32 bias.
    pub bias: &'static [i32],
}

/// The op a vector exercises, with its parameters.
pub enum Op {
    /// `CONV_2D` (depthwise = 0) or `DEPTHWISE_CONV_2D` (depthwise = multiplier).
    Conv {
        /// Weights.
        filter: Filter,
        /// Stride.
        stride: [usize; 2],
        /// Dilation.
        dilation: [usize; 2],
        /// Padding.
        padding: Padding,
        /// Fused activation.
        activation: Activation,
        /// Depth multiplier for `DEPTHWISE_CONV_2D`, else 0.
        depthwise: usize,
    },
    /// `FULLY_CONNECTED`.
    Dense {
        /// Weights.
        filter: Filter,
        /// Fused activation.
        activation: Activation,
    },
    /// `ADD`.
    Add {
        /// Fused activation.
        activation: Activation,
    },
    /// `CONCATENATION` along channels.
    Concat,
    /// `MAX_POOL_2D` or `AVERAGE_POOL_2D`.
    Pool {
        /// Max (else average).
        max: bool,
        /// Window.
        filter: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Padding.
        padding: Padding,
        /// Fused activation.
        activation: Activation,
    },
    /// `SOFTMAX`.
    Softmax {
        /// Beta.
        beta: f32,
    },
    /// `QUANTIZE` (int8 to int8), `RELU` or `RELU6`.
    Requantize {
        /// Activation applied after the rescale.
        activation: Activation,
    },
}

/// One TensorFlow Lite test vector.
pub struct VectorCase {
    /// Name.
    pub name: &'static str,
    /// Op and parameters.
    pub op: Op,
    /// Inputs.
    pub inputs: &'static [Tensor],
    /// TensorFlow Lite's output.
    pub output: Tensor,
}

include!(concat!(env!("OUT_DIR"), "/tflite_cases.rs"));

fn requant_tables<'a>(
    bump: &mut Bump<'a>,
    input: &Tensor,
    scales: &[f32],
    output: &Tensor,
    channels: usize,
) -> Result<(&'a [i32], &'a [i32]), Error> {
    let mult = bump.take::<i32>(channels)?;
    let shift = bump.take::<i32>(channels)?;
    for o in 0..channels {
        let r = if scales.len() == 1 {
            dense_requant_per_tensor(input.scale, scales[0], output.scale)?
        } else {
            conv_requant(input.scale, scales[o], output.scale)?
        };
        mult[o] = r.multiplier;
        shift[o] = r.shift;
    }
    Ok((mult, shift))
}

/// Runs one vector; returns the output (in the arena).
pub fn run<'a>(case: &VectorCase, bump: &mut Bump<'a>) -> Result<&'a [i8], Error> {
    let out_t = &case.output;
    let input = case.inputs.first().ok_or(Error::Unsupported {
        what: "vector without input",
    })?;
    let out = bump.take::<i8>(out_t.data.len())?;
    let out_q = out_t.qparams()?;
    match &case.op {
        Op::Conv {
            filter,
            stride,
            dilation,
            padding,
            activation,
            depthwise,
        } => {
            let in_shape = input.nhwc()?;
            // TensorFlow Lite keeps depthwise filters as 1HWO, which is our HWO.
            let config = match *filter.shape {
                [1, kh, kw, _] if *depthwise > 0 => {
                    Conv2dConfig::depthwise(in_shape, *depthwise, kh, kw)
                }
                [oc, kh, kw, _] if *depthwise == 0 => Conv2dConfig::new(in_shape, oc, kh, kw),
                _ => {
                    return Err(Error::Unsupported {
                        what: "conv filter shape",
                    })
                }
            };
            let weights = filter.data;
            let conv = Conv2d::new(
                config
                    .stride(stride[0], stride[1])
                    .dilation(dilation[0], dilation[1])
                    .padding(*padding),
            )?;
            let oc = conv.output_shape().c;
            let (mult, shift) = requant_tables(bump, input, filter.scales, out_t, oc)?;
            let layer = Conv2dI8::new(
                conv,
                WeightsI8 {
                    filter: weights,
                    bias: filter.bias,
                    multiplier: mult,
                    shift,
                },
                input.zero_point,
                out_t.zero_point,
                activation.range_i8(out_q),
            )?;
            let scratch = bump.take::<u8>(conv.scratch_len_i8())?;
            layer.run(input.data, out, scratch)?;
        }
        Op::Dense { filter, activation } => {
            let [o, i] = *filter.shape else {
                return Err(Error::Unsupported {
                    what: "dense filter rank",
                });
            };
            let dense = Dense::new(i, o)?;
            let (mult, shift) = requant_tables(bump, input, filter.scales, out_t, o)?;
            let layer = DenseI8::new(
                dense,
                WeightsI8 {
                    filter: filter.data,
                    bias: filter.bias,
                    multiplier: mult,
                    shift,
                },
                input.zero_point,
                out_t.zero_point,
                activation.range_i8(out_q),
            )?;
            let scratch = bump.take::<u8>(dense.scratch_len_i8())?;
            layer.run(input.data, out, scratch)?;
        }
        Op::Add { activation } => {
            let b = case.inputs.get(1).ok_or(Error::Unsupported {
                what: "add needs two inputs",
            })?;
            let q = AddQuant::new(input.qparams()?, b.qparams()?, out_q)?;
            AddI8::new(q, activation.range_i8(out_q))?.run(input.data, b.data, out)?;
        }
        Op::Concat => {
            if case.inputs.len() > 8 {
                return Err(Error::Unsupported {
                    what: "more than 8 concat inputs",
                });
            }
            let mut parts = [ConcatInputI8 {
                data: &[],
                channels: 1,
                rescale: Rescale::IDENTITY,
            }; 8];
            for (part, t) in parts.iter_mut().zip(case.inputs) {
                *part = ConcatInputI8 {
                    data: t.data,
                    channels: t.nhwc()?.c,
                    rescale: Rescale::new(t.qparams()?, out_q)?,
                };
            }
            concat_i8(&parts[..case.inputs.len()], out)?;
        }
        Op::Pool {
            max,
            filter,
            stride,
            padding,
            activation,
        } => {
            let pool = Pool2d::new(
                Pool2dConfig::new(input.nhwc()?, filter[0], filter[1])
                    .stride(stride[0], stride[1])
                    .padding(*padding),
            )?;
            let clamp = activation.range_i8(out_q);
            if *max {
                Pool2dI8::new(pool, PoolKind::Max, clamp).and_then(|p| p.run(input.data, out))?;
            } else {
                Pool2dI8::new(pool, PoolKind::Average, clamp)
                    .and_then(|p| p.run(input.data, out))?;
            }
        }
        Op::Softmax { beta } => {
            let depth = *input.shape.last().unwrap_or(&1);
            SoftmaxI8::new(input.scale, *beta)?.run(depth, input.data, out)?;
        }
        Op::Requantize { activation } => {
            ActI8::new(input.qparams()?, out_q, *activation)?.run(input.data, out)?;
        }
    }
    Ok(out)
}
