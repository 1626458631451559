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
use super::op::{
    activation_byte, ActivationRecord, AddRecord, ConcatRecord, Conv2dRecord, DenseRecord,
    OpRecord, PoolRecord, SoftmaxRecord, WeightRefs,
};
use super::view::Model;
use crate::error::{Error, Result};
use crate::ops::add::AddQuant;
use crate::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat, Conv2dI8};
use crate::ops::dense::{Dense, DenseFloat, DenseI8};
use crate::ops::pool::{Pool2d, Pool2dConfig, PoolKind};
use crate::ops::softmax::SoftmaxI8;
use crate::ops::Padding;
use crate::ops::WeightsI8;
use crate::quant::{conv_requant, Activation, QParams, Rescale};
use crate::tensor::Shape;
use half::f16;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

/// Element type and quantization of a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TensorType {
    /// int8 with these parameters.
    I8(QParams),
    /// f32.
    F32,
    /// f16.
    F16,
}

impl TensorType {
    fn dtype(self) -> DType {
        match self {
            TensorType::I8(_) => DType::I8,
            TensorType::F32 => DType::F32,
            TensorType::F16 => DType::F16,
        }
    }

    fn qparams(self) -> Option<QParams> {
        match self {
            TensorType::I8(q) => Some(q),
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
        let mut multiplier = Vec::with_capacity(weight_scales.len());
        let mut shift = Vec::with_capacity(weight_scales.len());
        for &s in weight_scales {
            let r = conv_requant(input.scale, s, output.scale)?;
            multiplier.push(r.multiplier);
            shift.push(r.shift);
        }
        Ok(Weights::I8 {
            filter,
            bias,
            multiplier,
            shift,
        })
    }

    fn dtype(&self) -> DType {
        match self {
            Weights::I8 { .. } => DType::I8,
            Weights::F32 { .. } => DType::F32,
            Weights::F16 { .. } => DType::F16,
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
struct TensorDef {
    shape: Shape,
    ty: TensorType,
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
}

/// Effective `[top, bottom, left, right]` padding of a geometry.
fn pads(
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
        }
    }

    /// With `false`, every tensor and scratch buffer gets its own place in
    /// the arena (no reuse, no in-place ops): larger, for debugging and for
    /// checking the planner.
    pub fn arena_reuse(&mut self, reuse: bool) -> &mut Self {
        self.reuse = reuse;
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

    fn get(&self, t: TensorId) -> Result<&TensorDef> {
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
    fn push_data<T: Copy>(&mut self, values: &[T], to_le: impl Fn(T) -> Vec<u8>) -> Result<u32> {
        let off = align_up(self.data.len(), f::SECTION_ALIGN);
        self.data.resize(off, 0);
        for &v in values {
            self.data.extend_from_slice(&to_le(v));
        }
        u32::try_from(off).map_err(|_| Error::Overflow)
    }

    fn push_i32(&mut self, v: &[i32]) -> Result<u32> {
        self.push_data(v, |x| x.to_le_bytes().to_vec())
    }

    fn push_weights(&mut self, w: &Weights) -> Result<WeightRefs> {
        Ok(match w {
            Weights::I8 {
                filter,
                bias,
                multiplier,
                shift,
            } => WeightRefs {
                filter: self.push_data(filter, |x| vec![x as u8])?,
                bias: self.push_i32(bias)?,
                requant: Some((self.push_i32(multiplier)?, self.push_i32(shift)?)),
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
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn op(
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

    fn same_dtype(&self, inputs: &[TensorId], dtype: DType) -> Result<()> {
        for &t in inputs {
            if self.get(t)?.ty.dtype() != dtype {
                return Err(Error::Unsupported {
                    what: "layer mixes element types",
                });
            }
        }
        Ok(())
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
        check_conv(conv, &weights, x.ty, output, activation)?;
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

    /// A dense layer over the whole input tensor, to `out_features`.
    pub fn dense(
        &mut self,
        name: &str,
        input: TensorId,
        out_features: usize,
        activation: Activation,
        weights: Weights,
        output: TensorType,
    ) -> Result<TensorId> {
        let x = self.get(input)?.clone();
        let dtype = weights.dtype();
        self.same_dtype(&[input], dtype)?;
        if output.dtype() != dtype {
            return Err(Error::Unsupported {
                what: "layer mixes element types",
            });
        }
        let dense = Dense::new(x.shape.len(), out_features)?;
        check_dense(dense, &weights, x.ty, output, activation)?;
        let params = DenseRecord {
            weights: self.push_weights(&weights)?,
        }
        .emit()?;
        let scratch = if dtype == DType::I8 {
            dense.scratch_len_i8()
        } else {
            0
        };
        Ok(self.op(
            OpKind::Dense,
            dtype,
            activation,
            &[input],
            (Shape::flat(out_features), output),
            name,
            params,
            scratch,
        ))
    }

    fn pool(
        &mut self,
        kind: OpKind,
        name: &str,
        input: TensorId,
        window: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
    ) -> Result<TensorId> {
        let x = self.get(input)?.clone();
        let pool = Pool2d::new(Pool2dConfig {
            input: x.shape,
            window,
            stride,
            padding,
        })?;
        let [top, bottom, left, right] = pads(
            x.shape,
            pool.output_shape(),
            window,
            stride,
            [1, 1],
            pool.padding(),
        );
        let params = PoolRecord {
            kind: if kind == OpKind::MaxPool {
                PoolKind::Max
            } else {
                PoolKind::Average
            },
            window,
            stride,
            pads: [top, bottom, left, right],
        }
        .emit()?;
        Ok(self.op(
            kind,
            x.ty.dtype(),
            Activation::None,
            &[input],
            (pool.output_shape(), x.ty),
            name,
            params,
            0,
        ))
    }

    /// Max pooling (output quantization = input's).
    pub fn max_pool(
        &mut self,
        name: &str,
        input: TensorId,
        window: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
    ) -> Result<TensorId> {
        self.pool(OpKind::MaxPool, name, input, window, stride, padding)
    }

    /// Average pooling (output quantization = input's).
    pub fn avg_pool(
        &mut self,
        name: &str,
        input: TensorId,
        window: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
    ) -> Result<TensorId> {
        self.pool(OpKind::AvgPool, name, input, window, stride, padding)
    }

    /// Global average pooling to 1x1xC.
    pub fn global_avg_pool(&mut self, name: &str, input: TensorId) -> Result<TensorId> {
        let s = self.get(input)?.shape;
        self.pool(
            OpKind::AvgPool,
            name,
            input,
            [s.h, s.w],
            [1, 1],
            Padding::Valid,
        )
    }

    /// Residual add of two tensors of the same shape.
    pub fn add(
        &mut self,
        name: &str,
        a: TensorId,
        b: TensorId,
        activation: Activation,
        output: TensorType,
    ) -> Result<TensorId> {
        let (x, y) = (self.get(a)?.clone(), self.get(b)?.clone());
        if x.shape != y.shape {
            return Err(Error::ShapeMismatch {
                what: "add inputs",
                expected: x.shape.len(),
                got: y.shape.len(),
            });
        }
        let dtype = output.dtype();
        self.same_dtype(&[a, b], dtype)?;
        let quant = match (x.ty.qparams(), y.ty.qparams(), output.qparams()) {
            (Some(qa), Some(qb), Some(qo)) => {
                let q = AddQuant::new(qa, qb, qo)?;
                crate::ops::add::AddI8::new(q, activation.range_i8(qo))?;
                Some(q)
            }
            _ => None,
        };
        let params = AddRecord { quant }.emit()?;
        Ok(self.op(
            OpKind::Add,
            dtype,
            activation,
            &[a, b],
            (x.shape, output),
            name,
            params,
            0,
        ))
    }

    /// Channel concatenation of 2..N tensors of the same height and width.
    pub fn concat(
        &mut self,
        name: &str,
        inputs: &[TensorId],
        output: TensorType,
    ) -> Result<TensorId> {
        if inputs.len() < 2 {
            return Err(Error::InvalidParameter {
                what: "concat needs at least two inputs",
            });
        }
        let dtype = output.dtype();
        self.same_dtype(inputs, dtype)?;
        let first = self.get(inputs[0])?.shape;
        let mut c = 0;
        let mut rescales = Vec::new();
        for &t in inputs {
            let d = self.get(t)?.clone();
            if d.shape.h != first.h || d.shape.w != first.w {
                return Err(Error::ShapeMismatch {
                    what: "concat input height and width",
                    expected: first.h * first.w,
                    got: d.shape.h * d.shape.w,
                });
            }
            c += d.shape.c;
            if let (Some(qi), Some(qo)) = (d.ty.qparams(), output.qparams()) {
                let r = Rescale::new(qi, qo)?;
                r.validate()?;
                rescales.extend_from_slice(&[
                    r.input_zero_point,
                    r.requant.multiplier,
                    r.requant.shift,
                    r.output_zero_point,
                ]);
            }
        }
        let rescales = match dtype {
            DType::I8 => Some(self.push_i32(&rescales)?),
            _ => None,
        };
        let params = ConcatRecord { rescales }.emit()?;
        Ok(self.op(
            OpKind::Concat,
            dtype,
            Activation::None,
            inputs,
            (Shape::new(first.h, first.w, c), output),
            name,
            params,
            0,
        ))
    }

    /// A standalone activation (int8: also rescales to `output`).
    pub fn activation(
        &mut self,
        name: &str,
        input: TensorId,
        activation: Activation,
        output: TensorType,
    ) -> Result<TensorId> {
        let x = self.get(input)?.clone();
        let dtype = output.dtype();
        self.same_dtype(&[input], dtype)?;
        let rescale = match (x.ty.qparams(), output.qparams()) {
            (Some(qi), Some(qo)) => {
                let r = Rescale::new(qi, qo)?;
                crate::ops::act::ActI8::from_parts(r, activation.range_i8(qo))?;
                Some(r)
            }
            _ => None,
        };
        let params = ActivationRecord { rescale }.emit()?;
        Ok(self.op(
            OpKind::Activation,
            dtype,
            activation,
            &[input],
            (x.shape, output),
            name,
            params,
            0,
        ))
    }

    /// Softmax over channels; int8 output has scale 1/256 and zero point -128.
    pub fn softmax(&mut self, name: &str, input: TensorId, beta: f32) -> Result<TensorId> {
        let x = self.get(input)?.clone();
        if !(beta.is_finite() && beta > 0.0) {
            return Err(Error::InvalidParameter {
                what: "softmax beta must be finite and positive",
            });
        }
        let (fixed, output) = match x.ty {
            TensorType::I8(q) => (
                Some(SoftmaxI8::new(q.scale, beta)?.parts()),
                TensorType::I8(QParams::new(1.0 / 256.0, -128)?),
            ),
            other => (None, other),
        };
        let params = SoftmaxRecord { fixed, beta }.emit()?;
        Ok(self.op(
            OpKind::Softmax,
            x.ty.dtype(),
            Activation::None,
            &[input],
            (x.shape, output),
            name,
            params,
            0,
        ))
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

    /// Plans the arena and writes the blob; the result parses with
    /// [`Model::parse`] (checked before it is returned).
    pub fn finish(&self) -> Result<Vec<u8>> {
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return Err(Error::InvalidParameter {
                what: "a model needs an input and an output",
            });
        }
        if self.tensors.len() >= u16::MAX as usize || self.ops.len() >= u16::MAX as usize {
            return Err(Error::Unsupported {
                what: "more than 65534 tensors or ops",
            });
        }
        let plan = plan(self)?;
        // Strings: name, labels, op names.
        let mut strings: Vec<&str> = vec![&self.name];
        let labels_first = strings.len();
        strings.extend(self.labels.iter().map(|s| s.as_str()));
        let op_names_first = strings.len();
        strings.extend(self.ops.iter().map(|o| o.name.as_str()));
        let mut string_bytes = Vec::new();
        for s in &strings {
            let len = u16::try_from(s.len()).map_err(|_| Error::Unsupported {
                what: "string longer than 65535 bytes",
            })?;
            string_bytes.extend_from_slice(&len.to_le_bytes());
            string_bytes.extend_from_slice(s.as_bytes());
        }
        // Lists: inputs, outputs, then each op's inputs.
        let mut lists: Vec<u16> = self
            .inputs
            .iter()
            .chain(&self.outputs)
            .map(|&t| t as u16)
            .collect();
        let mut op_first = Vec::new();
        for o in &self.ops {
            op_first.push(lists.len());
            lists.extend(o.inputs.iter().map(|&t| t as u16));
        }
        if lists.len() > u16::MAX as usize {
            return Err(Error::Unsupported {
                what: "index lists too long",
            });
        }
        let tensors_off = align_up(f::HEADER_LEN, f::SECTION_ALIGN);
        let ops_off = align_up(
            tensors_off + self.tensors.len() * f::TENSOR_LEN,
            f::SECTION_ALIGN,
        );
        let lists_off = align_up(ops_off + self.ops.len() * f::OP_LEN, f::SECTION_ALIGN);
        let strings_off = align_up(lists_off + lists.len() * 2, f::SECTION_ALIGN);
        let data_off = align_up(strings_off + string_bytes.len(), f::SECTION_ALIGN);
        let total = data_off + self.data.len();
        let mut b = vec![0u8; total];
        let put16 =
            |b: &mut Vec<u8>, off: usize, v: u16| b[off..off + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |b: &mut Vec<u8>, off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        let u32_of = |v: usize| u32::try_from(v).map_err(|_| Error::Overflow);
        b[..4].copy_from_slice(&f::MAGIC);
        put16(&mut b, f::header::VERSION, f::VERSION);
        put16(&mut b, f::header::HEADER_LEN, f::HEADER_LEN as u16);
        put32(&mut b, f::header::TOTAL_LEN, u32_of(total)?);
        put32(&mut b, f::header::ARENA_LEN, u32_of(plan.arena_len)?);
        put16(&mut b, f::header::N_TENSORS, self.tensors.len() as u16);
        put16(&mut b, f::header::N_OPS, self.ops.len() as u16);
        put16(&mut b, f::header::N_INPUTS, self.inputs.len() as u16);
        put16(&mut b, f::header::N_OUTPUTS, self.outputs.len() as u16);
        put32(&mut b, f::header::TENSORS_OFF, u32_of(tensors_off)?);
        put32(&mut b, f::header::OPS_OFF, u32_of(ops_off)?);
        put32(&mut b, f::header::LISTS_OFF, u32_of(lists_off)?);
        put32(&mut b, f::header::LISTS_LEN, u32_of(lists.len())?);
        put32(&mut b, f::header::STRINGS_OFF, u32_of(strings_off)?);
        put32(&mut b, f::header::STRINGS_LEN, u32_of(string_bytes.len())?);
        put32(&mut b, f::header::DATA_OFF, u32_of(data_off)?);
        put32(&mut b, f::header::DATA_LEN, u32_of(self.data.len())?);
        put16(&mut b, f::header::NAME, 0);
        put16(
            &mut b,
            f::header::LABELS_FIRST,
            if self.labels.is_empty() {
                0
            } else {
                labels_first as u16
            },
        );
        put16(&mut b, f::header::N_LABELS, self.labels.len() as u16);
        put32(&mut b, f::header::NORM_SCALE, self.norm.0.to_bits());
        put32(&mut b, f::header::NORM_OFFSET, self.norm.1.to_bits());
        for (t, d) in self.tensors.iter().enumerate() {
            let r = tensors_off + t * f::TENSOR_LEN;
            b[r + f::tensor::DTYPE] = d.ty.dtype() as u8;
            put32(
                &mut b,
                r + f::tensor::ARENA_OFFSET,
                u32_of(plan.offsets[t])?,
            );
            put32(&mut b, r + f::tensor::H, u32_of(d.shape.h)?);
            put32(&mut b, r + f::tensor::W, u32_of(d.shape.w)?);
            put32(&mut b, r + f::tensor::C, u32_of(d.shape.c)?);
            if let Some(q) = d.ty.qparams() {
                put32(&mut b, r + f::tensor::SCALE, q.scale.to_bits());
                put32(&mut b, r + f::tensor::ZERO_POINT, q.zero_point as u32);
            }
        }
        for (i, o) in self.ops.iter().enumerate() {
            let r = ops_off + i * f::OP_LEN;
            b[r + f::op::KIND] = o.kind as u8;
            b[r + f::op::DTYPE] = o.dtype as u8;
            b[r + f::op::ACTIVATION] = activation_byte(o.activation);
            put16(&mut b, r + f::op::INPUTS_FIRST, op_first[i] as u16);
            put16(&mut b, r + f::op::N_INPUTS, o.inputs.len() as u16);
            put16(&mut b, r + f::op::OUTPUT, o.output as u16);
            put16(&mut b, r + f::op::NAME, (op_names_first + i) as u16);
            put32(&mut b, r + f::op::SCRATCH_OFFSET, u32_of(plan.scratch[i])?);
            for (k, &p) in o.params.iter().enumerate() {
                put32(&mut b, r + f::op::PARAMS + 4 * k, p);
            }
        }
        for (k, &v) in lists.iter().enumerate() {
            put16(&mut b, lists_off + 2 * k, v);
        }
        b[strings_off..strings_off + string_bytes.len()].copy_from_slice(&string_bytes);
        b[data_off..].copy_from_slice(&self.data);
        let crc = super::view::crc32(&b[16..]);
        put32(&mut b, f::header::CRC, crc);
        let check = AlignedBytes::from(b.clone());
        Model::parse(check.as_bytes())?;
        Ok(b)
    }
}

fn check_conv(
    conv: Conv2d,
    w: &Weights,
    input: TensorType,
    output: TensorType,
    act: Activation,
) -> Result<()> {
    match (w, input, output) {
        (
            Weights::I8 {
                filter,
                bias,
                multiplier,
                shift,
            },
            TensorType::I8(qi),
            TensorType::I8(qo),
        ) => Conv2dI8::new(
            conv,
            WeightsI8 {
                filter,
                bias,
                multiplier,
                shift,
            },
            qi.zero_point,
            qo.zero_point,
            act.range_i8(qo),
        )
        .map(|_| ()),
        (Weights::F32 { filter, bias }, TensorType::F32, TensorType::F32) => {
            Conv2dFloat::new(conv, filter, bias, act).map(|_| ())
        }
        (Weights::F16 { filter, bias }, TensorType::F16, TensorType::F16) => {
            Conv2dFloat::new(conv, filter, bias, act).map(|_| ())
        }
        _ => Err(Error::Unsupported {
            what: "layer mixes element types",
        }),
    }
}

fn check_dense(
    d: Dense,
    w: &Weights,
    input: TensorType,
    output: TensorType,
    act: Activation,
) -> Result<()> {
    match (w, input, output) {
        (
            Weights::I8 {
                filter,
                bias,
                multiplier,
                shift,
            },
            TensorType::I8(qi),
            TensorType::I8(qo),
        ) => DenseI8::new(
            d,
            WeightsI8 {
                filter,
                bias,
                multiplier,
                shift,
            },
            qi.zero_point,
            qo.zero_point,
            act.range_i8(qo),
        )
        .map(|_| ()),
        (Weights::F32 { filter, bias }, TensorType::F32, TensorType::F32) => {
            DenseFloat::new(d, filter, bias, act).map(|_| ())
        }
        (Weights::F16 { filter, bias }, TensorType::F16, TensorType::F16) => {
            DenseFloat::new(d, filter, bias, act).map(|_| ())
        }
        _ => Err(Error::Unsupported {
            what: "layer mixes element types",
        }),
    }
}

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
fn plan(m: &ModelBuilder) -> Result<Plan> {
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
    Ok(Plan {
        offsets,
        scratch,
        arena_len,
        naive_len,
    })
}

impl ModelBuilder {
    /// A builder holding a parsed model exactly: `finish` on it writes the
    /// same bytes (the writer is the reader's twin; tested round trip).
    pub fn from_model(model: &Model<'_>) -> Result<ModelBuilder> {
        let mut b = ModelBuilder::new(model.name());
        b.tensors = (0..model.tensor_count())
            .map(|t| {
                let info = model.tensor(t);
                TensorDef {
                    shape: info.shape,
                    ty: match (info.dtype, info.qparams) {
                        (DType::I8, Some(q)) => TensorType::I8(q),
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
        plan(self)
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
        // SAFETY: a u128 slice is readable as bytes (any alignment, no
        // padding); `len` is at most the words' byte length.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
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
