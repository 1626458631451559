//! Writing model blobs on the host (`std`): [`ModelBuilder`] is the exact
//! twin of [`Model::parse`]; it checks each layer with the kernels' own
//! constructors, plans the arena and emits the bytes.
//!
//! ```
//! use picocnn::model::writer::{ModelBuilder, TensorType, Weights};
//! use picocnn::model::{Interpreter, Model};
//! use picocnn::ops::conv::Conv2dConfig;
//! use picocnn::ops::Padding;
//! use picocnn::{Activation, Shape};
//!
//! let mut b = ModelBuilder::new("tiny");
//! let x = b.input(Shape::new(4, 4, 1), TensorType::F32);
//! let y = b.conv2d("conv", x, Conv2dConfig::new(Shape::new(4, 4, 1), 2, 3, 3).padding(Padding::Same),
//!                  Activation::Relu, Weights::F32 { filter: vec![0.5; 18], bias: vec![0.0, 1.0] }, TensorType::F32)?;
//! let z = b.max_pool("pool", y, [2, 2], [2, 2], Padding::Valid)?;
//! b.output(z);
//! let blob = picocnn::model::writer::AlignedBytes::from(b.finish()?);
//! let model = Model::parse(blob.as_bytes())?;
//! let mut arena = vec![0u8; model.arena_len()];
//! let mut interp = Interpreter::new(&model, &mut arena)?;
//! interp.input_mut::<f32>(0)?.fill(1.0);
//! interp.run()?;
//! assert_eq!(interp.output::<f32>(0)?, &[4.5, 5.5, 4.5, 5.5, 4.5, 5.5, 4.5, 5.5]);
//! # Ok::<(), picocnn::Error>(())
//! ```

extern crate std;

use super::format::{self as f, align_up, DType, OpKind};
use super::layer::Layer;
use super::view::Model;
use crate::error::{Error, Result};
use crate::ops::WeightsI8;
use crate::quant::{conv_requant, Activation, Clamp, QParams};
use crate::tensor::Shape;
use half::f16;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

mod emit;
mod fuse;
mod plan;

pub use fuse::{Fusion, PlanReport};
pub use plan::Plan;

/// Element type and quantization of a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TensorType {
    /// int8 with these parameters.
    I8(QParams),
    /// f32.
    F32,
    /// f16.
    F16,
    /// Symmetric int16 (zero point 0) with this scale: 16x8 activations.
    I16(QParams),
}

impl TensorType {
    pub(in crate::model) fn dtype(self) -> DType {
        match self {
            TensorType::I8(_) => DType::I8,
            TensorType::I16(_) => DType::I16,
            TensorType::F32 => DType::F32,
            TensorType::F16 => DType::F16,
        }
    }

    /// The element type's name.
    pub fn dtype_name(self) -> &'static str {
        self.dtype().name()
    }

    pub(in crate::model) fn qparams(self) -> Option<QParams> {
        match self {
            TensorType::I8(q) | TensorType::I16(q) => Some(q),
            _ => None,
        }
    }
}

/// Weights of a convolution or dense layer, in the layer's precision.
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    /// int8 filters, int32 bias and per-channel requantization.
    I8 {
        /// Filters (OHWI; HWO for depthwise; `[out][in]` for dense).
        filter: Vec<i8>,
        /// Bias, scale `s_in * s_w[o]`.
        bias: Vec<i32>,
        /// Q31 multipliers.
        multiplier: Vec<i32>,
        /// Shifts.
        shift: Vec<i32>,
    },
    /// f32.
    F32 {
        /// Filters.
        filter: Vec<f32>,
        /// Bias.
        bias: Vec<f32>,
    },
    /// f16.
    F16 {
        /// Filters.
        filter: Vec<f16>,
        /// Bias.
        bias: Vec<f16>,
    },
    /// 16x8: int8 filters, int64 bias and per-channel requantization of
    /// an int16 layer.
    I16 {
        /// Filters (the int8 layouts).
        filter: Vec<i8>,
        /// Bias, scale `s_in * s_w[o]`.
        bias: Vec<i64>,
        /// Q31 multipliers.
        multiplier: Vec<i32>,
        /// Shifts, `-31..=7`.
        shift: Vec<i32>,
        /// `s_in * s_w[o] / s_out` in double precision (a dense layer's
        /// requantization).
        scale: Vec<f64>,
    },
}

/// Per output channel, `s_in * s_w[o] / s_out` as a Q31 multiplier and a
/// shift, as TensorFlow Lite computes them.
fn requants(
    weight_scales: &[f32],
    input: QParams,
    output: QParams,
) -> Result<(Vec<i32>, Vec<i32>)> {
    weight_scales
        .iter()
        .map(|&s| conv_requant(input.scale, s, output.scale).map(|r| (r.multiplier, r.shift)))
        .collect::<Result<Vec<_>>>()
        .map(|v| v.into_iter().unzip())
}

impl Weights {
    /// int8 weights with the requantization derived from the scales as
    /// TensorFlow Lite does (`s_in * s_w[o] / s_out` per output channel).
    pub fn i8_from_scales(
        filter: Vec<i8>,
        bias: Vec<i32>,
        weight_scales: &[f32],
        input: QParams,
        output: QParams,
    ) -> Result<Weights> {
        let (multiplier, shift) = requants(weight_scales, input, output)?;
        Ok(Weights::I8 {
            filter,
            bias,
            multiplier,
            shift,
        })
    }

    /// 16x8 weights with the requantization derived from the scales as
    /// TensorFlow Lite does.
    pub fn i16_from_scales(
        filter: Vec<i8>,
        bias: Vec<i64>,
        weight_scales: &[f32],
        input: QParams,
        output: QParams,
    ) -> Result<Weights> {
        let (multiplier, shift) = requants(weight_scales, input, output)?;
        let scale = weight_scales
            .iter()
            .map(|&s| f64::from(input.scale) * f64::from(s) / f64::from(output.scale))
            .collect();
        Ok(Weights::I16 {
            filter,
            bias,
            multiplier,
            shift,
            scale,
        })
    }

    /// Checks the weights against a layer's kernel constructors: `i8`,
    /// `f32` and `f16` build the kernel of each precision; input and output
    /// types must be the weights'.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::model) fn check(
        &self,
        input: TensorType,
        output: TensorType,
        activation: Activation,
        i8: impl FnOnce(WeightsI8<'_>, i32, i32, Clamp) -> Result<()>,
        f32: impl FnOnce(&[f32], &[f32]) -> Result<()>,
        f16: impl FnOnce(&[f16], &[f16]) -> Result<()>,
        lens: (usize, usize),
    ) -> Result<()> {
        match (self, input, output) {
            (
                Weights::I16 {
                    filter,
                    bias,
                    multiplier,
                    shift,
                    scale,
                },
                TensorType::I16(_),
                TensorType::I16(qo),
            ) => {
                if scale.len() != bias.len() || scale.iter().any(|s| !(s.is_finite() && *s >= 0.0))
                {
                    return Err(Error::InvalidParameter {
                        what: "16x8 scales: one finite, non-negative value per output",
                    });
                }
                crate::ops::x16::WeightsI16 {
                    filter,
                    bias,
                    multiplier,
                    shift,
                }
                .check(lens.0, lens.1)?;
                crate::ops::x16::Clamp16::new(
                    activation.range_i16(qo).min,
                    activation.range_i16(qo).max,
                )
                .map(|_| ())
            }
            (
                Weights::I8 {
                    filter,
                    bias,
                    multiplier,
                    shift,
                },
                TensorType::I8(qi),
                TensorType::I8(qo),
            ) => {
                let weights = WeightsI8 {
                    filter,
                    bias,
                    multiplier,
                    shift,
                };
                i8(
                    weights,
                    qi.zero_point,
                    qo.zero_point,
                    activation.range_i8(qo),
                )
            }
            (Weights::F32 { filter, bias }, TensorType::F32, TensorType::F32) => f32(filter, bias),
            (Weights::F16 { filter, bias }, TensorType::F16, TensorType::F16) => f16(filter, bias),
            _ => Err(Error::Unsupported {
                what: "layer mixes element types",
            }),
        }
    }

    pub(in crate::model) fn dtype(&self) -> DType {
        match self {
            Weights::I8 { .. } => DType::I8,
            Weights::F32 { .. } => DType::F32,
            Weights::F16 { .. } => DType::F16,
            Weights::I16 { .. } => DType::I16,
        }
    }
}

/// A tensor of a model being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorId(usize);

impl TensorId {
    /// Its index in the tensor table.
    pub fn index(self) -> usize {
        self.0
    }
}

#[derive(Debug, Clone)]
pub(in crate::model) struct TensorDef {
    pub shape: Shape,
    pub ty: TensorType,
}

#[derive(Debug, Clone)]
struct OpDef {
    kind: OpKind,
    dtype: DType,
    activation: Activation,
    inputs: Vec<usize>,
    output: usize,
    name: String,
    params: [u32; 12],
    scratch: usize,
}

/// Builds a model blob layer by layer.
#[derive(Debug, Clone)]
pub struct ModelBuilder {
    name: String,
    tensors: Vec<TensorDef>,
    ops: Vec<OpDef>,
    data: Vec<u8>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    labels: Vec<String>,
    norm: (f32, f32),
    reuse: bool,
    fuse: Fusion,
}

/// Effective `[top, bottom, left, right]` padding of a geometry.
pub(in crate::model) fn pads(
    input: Shape,
    output: Shape,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    lead: [usize; 2],
) -> [usize; 4] {
    let eff = |k: usize, d: usize| (k - 1) * d + 1;
    let tail = |i: usize, o: usize, k: usize, s: usize, d: usize, l: usize| {
        ((o - 1) * s + eff(k, d)).saturating_sub(i + l)
    };
    [
        lead[0],
        tail(
            input.h,
            output.h,
            kernel[0],
            stride[0],
            dilation[0],
            lead[0],
        ),
        lead[1],
        tail(
            input.w,
            output.w,
            kernel[1],
            stride[1],
            dilation[1],
            lead[1],
        ),
    ]
}

impl ModelBuilder {
    /// An empty model called `name`.
    pub fn new(name: &str) -> Self {
        ModelBuilder {
            name: name.to_string(),
            tensors: Vec::new(),
            ops: Vec::new(),
            data: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            labels: Vec::new(),
            norm: (1.0, 0.0),
            reuse: true,
            fuse: Fusion::Smaller,
        }
    }

    /// With `false`, every tensor and scratch buffer gets its own place in
    /// the arena (no reuse, no in-place ops): larger, for debugging and for
    /// checking the planner.
    pub fn arena_reuse(&mut self, reuse: bool) -> &mut Self {
        self.reuse = reuse;
        self
    }

    /// When [`finish`](Self::finish) fuses a convolution with the pool
    /// over its output ([`Fusion::Smaller`] by default).
    pub fn fuse(&mut self, fuse: Fusion) -> &mut Self {
        self.fuse = fuse;
        self
    }

    /// Class labels, in output order.
    pub fn labels<S: AsRef<str>>(&mut self, labels: &[S]) -> &mut Self {
        self.labels = labels.iter().map(|s| s.as_ref().to_string()).collect();
        self
    }

    /// Input normalisation: `input = raw * scale + offset`.
    pub fn normalisation(&mut self, scale: f32, offset: f32) -> &mut Self {
        self.norm = (scale, offset);
        self
    }

    fn tensor(&mut self, shape: Shape, ty: TensorType) -> TensorId {
        self.tensors.push(TensorDef { shape, ty });
        TensorId(self.tensors.len() - 1)
    }

    pub(in crate::model) fn get(&self, t: TensorId) -> Result<&TensorDef> {
        self.tensors.get(t.0).ok_or(Error::WrongTensor {
            what: "tensor of another builder",
        })
    }

    /// A model input.
    pub fn input(&mut self, shape: Shape, ty: TensorType) -> TensorId {
        let t = self.tensor(shape, ty);
        self.inputs.push(t.0);
        t
    }

    /// Marks `t` as a model output (in call order).
    pub fn output(&mut self, t: TensorId) -> &mut Self {
        self.outputs.push(t.0);
        self
    }

    /// Appends `values` to the data section (16-byte aligned); returns the offset.
    pub(in crate::model) fn push_data<T: Copy>(
        &mut self,
        values: &[T],
        to_le: impl Fn(T) -> Vec<u8>,
    ) -> Result<u32> {
        let off = align_up(self.data.len(), f::SECTION_ALIGN);
        self.data.resize(off, 0);
        for &v in values {
            self.data.extend_from_slice(&to_le(v));
        }
        u32::try_from(off).map_err(|_| Error::Overflow)
    }

    pub(in crate::model) fn push_i32(&mut self, v: &[i32]) -> Result<u32> {
        self.push_data(v, |x| x.to_le_bytes().to_vec())
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::model) fn op(
        &mut self,
        kind: OpKind,
        dtype: DType,
        activation: Activation,
        inputs: &[TensorId],
        output: (Shape, TensorType),
        name: &str,
        params: [u32; 12],
        scratch: usize,
    ) -> TensorId {
        let out = self.tensor(output.0, output.1);
        self.ops.push(OpDef {
            kind,
            dtype,
            activation,
            inputs: inputs.iter().map(|t| t.0).collect(),
            output: out.0,
            name: name.to_string(),
            params,
            scratch,
        });
        out
    }

    pub(in crate::model) fn same_dtype(&self, inputs: &[TensorId], dtype: DType) -> Result<()> {
        for &t in inputs {
            if self.get(t)?.ty.dtype() != dtype {
                return Err(Error::Unsupported {
                    what: "layer mixes element types",
                });
            }
        }
        Ok(())
    }

    /// Writes `layer` reading `inputs`: the one entry point an exporter
    /// needs, dispatching to the per-kind methods above. Convolutions and
    /// dense layers take `weights`, other kinds none. `output` is the output
    /// tensor's type; pools and softmax fix theirs (pools keep the input's,
    /// int8 softmax has scale 1/256 and zero point -128) and `output` must
    /// equal it. Dropout and batch normalisation are training-only and
    /// rejected: export removes the first and folds the second.
    pub fn layer(
        &mut self,
        name: &str,
        layer: &Layer,
        inputs: &[TensorId],
        weights: Option<Weights>,
        output: TensorType,
    ) -> Result<TensorId> {
        let shapes: Vec<Shape> = inputs
            .iter()
            .map(|&t| self.get(t).map(|d| d.shape))
            .collect::<Result<_>>()?;
        layer.output_shape(&shapes)?;
        let takes_weights = matches!(layer, Layer::Conv2d { .. } | Layer::Dense { .. });
        if takes_weights != weights.is_some() {
            return Err(Error::InvalidParameter {
                what: if takes_weights {
                    "convolution and dense layers need weights"
                } else {
                    "only convolution and dense layers take weights"
                },
            });
        }
        let fixed = |b: &Self, t: TensorId| -> Result<()> {
            if b.get(t)?.ty != output {
                return Err(Error::Unsupported {
                    what: "pool or softmax output type differs from the one it produces",
                });
            }
            Ok(())
        };
        let x = inputs[0];
        match (*layer, weights) {
            (Layer::Conv2d { activation, .. }, Some(w)) => {
                let config = layer
                    .conv_config(shapes[0])
                    .ok_or(Error::Unsupported { what: "layer kind" })?;
                self.conv2d(name, x, config, activation, w, output)
            }
            (
                Layer::Dense {
                    out_features,
                    activation,
                },
                Some(w),
            ) => self.dense(name, x, out_features, activation, w, output),
            (
                Layer::MaxPool {
                    window,
                    stride,
                    padding,
                }
                | Layer::AvgPool {
                    window,
                    stride,
                    padding,
                },
                None,
            ) => {
                fixed(self, x)?;
                let kind = layer
                    .op_kind()
                    .ok_or(Error::Unsupported { what: "layer kind" })?;
                self.pool(kind, name, x, window, stride, padding)
            }
            (Layer::Add { activation }, None) => self.add(name, x, inputs[1], activation, output),
            (Layer::Concat, None) => self.concat(name, inputs, output),
            (Layer::Activation(a), None) => self.activation(name, x, a, output),
            (Layer::Softmax { beta }, None) => {
                let produced = match self.get(x)?.ty {
                    TensorType::I8(_) => TensorType::I8(QParams::new(1.0 / 256.0, -128)?),
                    other => other,
                };
                if produced != output {
                    return Err(Error::Unsupported {
                        what: "pool or softmax output type differs from the one it produces",
                    });
                }
                self.softmax(name, x, beta)
            }
            _ => Err(Error::Unsupported {
                what: "dropout and batch norm are training-only layers",
            }),
        }
    }

    /// Element type and quantization of tensor `t`.
    pub fn tensor_type(&self, t: TensorId) -> Result<TensorType> {
        Ok(self.get(t)?.ty)
    }

    /// Shape of tensor `t`.
    pub fn shape(&self, t: TensorId) -> Result<Shape> {
        Ok(self.get(t)?.shape)
    }
}

impl ModelBuilder {
    /// A builder holding a parsed model exactly: `finish` on it writes the
    /// same bytes (the writer is the reader's twin; tested round trip).
    pub fn from_model(model: &Model<'_>) -> Result<ModelBuilder> {
        let mut b = ModelBuilder::new(model.name());
        // The same ops, so the same bytes.
        b.fuse = Fusion::Never;
        b.tensors = (0..model.tensor_count())
            .map(|t| {
                let info = model.tensor(t);
                TensorDef {
                    shape: info.shape,
                    ty: match (info.dtype, info.qparams) {
                        (DType::I8, Some(q)) => TensorType::I8(q),
                        (DType::I16, Some(q)) => TensorType::I16(q),
                        (DType::F16, _) => TensorType::F16,
                        _ => TensorType::F32,
                    },
                }
            })
            .collect();
        b.inputs = (0..model.input_count())
            .filter_map(|i| model.input(i))
            .collect();
        b.outputs = (0..model.output_count())
            .filter_map(|i| model.output(i))
            .collect();
        b.labels = (0..model.label_count())
            .map(|i| model.label(i).unwrap_or("").to_string())
            .collect();
        b.norm = model.normalisation();
        b.data = model.data().to_vec();
        for i in 0..model.op_count() {
            let op = model.op(i);
            b.ops.push(OpDef {
                kind: op.kind,
                dtype: op.dtype,
                activation: op.activation,
                inputs: (0..op.input_count())
                    .map(|k| model.op_input(&op, k))
                    .collect(),
                output: op.output,
                name: op.name.to_string(),
                params: op.params,
                scratch: model.scratch_len(i),
            });
        }
        Ok(b)
    }

    /// The arena plan [`finish`](Self::finish) would write.
    pub fn plan(&self) -> Result<Plan> {
        plan::plan(self)
    }
}

/// Bytes on a 16-byte boundary, as a model blob wants them on the host
/// (a file read into a `Vec<u8>` may start anywhere).
#[derive(Debug, Clone)]
pub struct AlignedBytes {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBytes {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
}

impl From<Vec<u8>> for AlignedBytes {
    fn from(bytes: Vec<u8>) -> Self {
        AlignedBytes::from(&bytes[..])
    }
}

impl From<&[u8]> for AlignedBytes {
    fn from(bytes: &[u8]) -> Self {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks(16)) {
            let mut b = [0u8; 16];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u128::from_ne_bytes(b);
        }
        AlignedBytes {
            words,
            len: bytes.len(),
        }
    }
}
