//! TensorFlow Lite flatbuffers of int8 and float32 networks, read with the `flatbuffers` crate and
//! TensorFlow Lite's schema (every offset and length checked by its
//! verifier before anything is read), mapped op by op onto a
//! [`ModelBuilder`], which plans and checks the blob as for picocnn's own
//! exports.
//!
//! Taken so far (int8 per-tensor or per-channel, and float32): `CONV_2D`,
//! `DEPTHWISE_CONV_2D`, `FULLY_CONNECTED`, `MAX_POOL_2D`,
//! `AVERAGE_POOL_2D`, `MEAN` over height and width, `ADD`,
//! `CONCATENATION` (channels), `RESHAPE` to a flat vector, `SOFTMAX`,
//! `RELU`, `RELU6`, `PAD` before a convolution (folded into its padding),
//! `QUANTIZE` between two tensors of one integer type (a requantization), and `QUANTIZE` / `DEQUANTIZE` at
//! the model's edges (the blob's input and output are then the int8
//! tensors). Anything else is refused with the op's index and name.

use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use crate::model::writer::{ModelBuilder, TensorId, TensorType, Weights};
use crate::ops::conv::Conv2dConfig;
use crate::ops::Padding;
use crate::quant::{Activation, QParams};
use crate::tensor::Shape;

use super::{fail, ImportError, Options};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    unused_imports,
    dead_code,
    deprecated,
    non_camel_case_types,
    non_snake_case,
    unsafe_op_in_unsafe_fn,
    mismatched_lifetime_syntaxes
)]
#[rustfmt::skip]
mod tflite_schema;
#[cfg(test)]
mod tests;

use tflite_schema::tflite as fb;

/// Reads a TensorFlow Lite model (`.tflite` bytes) and writes it as a
/// picocnn blob named `name`.
///
/// ```no_run
/// let tflite = std::fs::read("lenet5_int8.tflite")?;
/// let blob = picocnn::import::tflite(&tflite, "lenet5")?;
/// std::fs::write("lenet5.pcnn", blob)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn tflite(bytes: &[u8], name: &str) -> Result<Vec<u8>, ImportError> {
    tflite_with(
        bytes,
        &Options {
            name,
            ..Options::default()
        },
    )
}

/// [`tflite`] with the blob's labels and input normalisation.
pub fn tflite_with(bytes: &[u8], options: &Options<'_>) -> Result<Vec<u8>, ImportError> {
    let name = options.name;
    let model = fb::root_as_model(bytes)
        .map_err(|e| ImportError(format!("not a TensorFlow Lite model: {e}")))?;
    if model.version() != 3 {
        return fail(format!(
            "schema version {} (this reads version 3)",
            model.version()
        ));
    }
    let graphs = model
        .subgraphs()
        .ok_or_else(|| ImportError("no subgraph".into()))?;
    if graphs.len() != 1 {
        return fail(format!(
            "{} subgraphs (this reads models with one)",
            graphs.len()
        ));
    }
    let mut builder = ModelBuilder::new(name);
    if !options.labels.is_empty() {
        builder.labels(options.labels);
    }
    if let Some((scale, offset)) = options.normalisation {
        builder.normalisation(scale, offset);
    }
    Importer {
        model,
        graph: graphs.get(0),
        builder,
        ids: Vec::new(),
        pads: Vec::new(),
    }
    .run()
}

struct Importer<'a> {
    model: fb::Model<'a>,
    graph: fb::SubGraph<'a>,
    builder: ModelBuilder,
    /// The blob's tensor standing for each TensorFlow Lite tensor.
    ids: Vec<Option<TensorId>>,
    /// Tensors made by `PAD`: the padded tensor's input and `[top,
    /// bottom, left, right]`, for the convolution that takes them.
    pads: Vec<(i32, i32, [usize; 4])>,
}

/// An op's name, as TensorFlow Lite's schema spells it.
fn op_name(code: fb::BuiltinOperator) -> String {
    code.variant_name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("builtin {}", code.0))
}

impl<'a> Importer<'a> {
    fn tensors(
        &self,
    ) -> Result<flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<fb::Tensor<'a>>>, ImportError>
    {
        self.graph
            .tensors()
            .ok_or_else(|| ImportError("the subgraph has no tensors".into()))
    }

    fn tensor(&self, t: i32) -> Result<fb::Tensor<'a>, ImportError> {
        let ts = self.tensors()?;
        match usize::try_from(t) {
            Ok(i) if i < ts.len() => Ok(ts.get(i)),
            _ => fail(format!(
                "tensor index {t} is outside the {} tensors",
                ts.len()
            )),
        }
    }

    /// A tensor's shape as NHWC with a batch of one.
    fn shape(&self, t: i32) -> Result<Shape, ImportError> {
        let dims: Vec<i32> = self
            .tensor(t)?
            .shape()
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        let n = |d: i32| usize::try_from(d).ok().filter(|&d| d > 0 && d <= 1 << 20);
        let bad = || {
            ImportError(format!(
                "tensor {t} has shape {dims:?}: this takes [1, H, W, C] or [1, N]"
            ))
        };
        let [h, w, c] = match dims[..] {
            [1, h, w, c] => [n(h), n(w), n(c)],
            [1, c] => [Some(1), Some(1), n(c)],
            _ => return Err(bad()),
        };
        match (h, w, c) {
            (Some(h), Some(w), Some(c)) if h * w * c <= 1 << 28 => Ok(Shape::new(h, w, c)),
            _ => Err(bad()),
        }
    }

    /// A tensor's int8 quantization: one scale and zero point.
    fn qparams(&self, t: i32) -> Result<QParams, ImportError> {
        let tensor = self.tensor(t)?;
        if !matches!(tensor.type_(), fb::TensorType::INT8 | fb::TensorType::INT16) {
            return fail(format!(
                "tensor {t} ({}) is {}: this imports int8, 16x8 and float32 models",
                tensor.name().unwrap_or(""),
                tensor
                    .type_()
                    .variant_name()
                    .unwrap_or("of an unknown type")
            ));
        }
        let q = tensor
            .quantization()
            .ok_or_else(|| ImportError(format!("tensor {t} has no quantization")))?;
        match (q.scale(), q.zero_point()) {
            (Some(s), Some(z)) if s.len() == 1 && z.len() == 1 => {
                let zp = i32::try_from(z.get(0))
                    .map_err(|_| ImportError(format!("tensor {t}: zero point {}", z.get(0))))?;
                if tensor.type_() == fb::TensorType::INT16 && zp != 0 {
                    return fail(format!("int16 tensor {t} has zero point {zp}, not 0"));
                }
                Ok(QParams::new(s.get(0), zp)?)
            }
            _ => fail(format!(
                "tensor {t}: an activation needs one scale and one zero point"
            )),
        }
    }

    /// A tensor's element type: int8 with its quantization, or float32.
    fn ty(&self, t: i32) -> Result<TensorType, ImportError> {
        let kind = self.tensor(t)?.type_();
        if kind == fb::TensorType::FLOAT32 {
            Ok(TensorType::F32)
        } else if kind == fb::TensorType::INT16 {
            Ok(TensorType::I16(self.qparams(t)?))
        } else {
            Ok(TensorType::I8(self.qparams(t)?))
        }
    }

    /// Fails unless tensors `a` and `b` have one type and quantization.
    fn same_ty(&self, a: i32, b: i32) -> Result<TensorType, ImportError> {
        let ty = self.ty(a)?;
        if ty != self.ty(b)? {
            return fail("the output's quantization differs from the input's");
        }
        Ok(ty)
    }

    /// A constant float32 tensor of `len` values.
    fn floats(&self, t: i32, len: usize) -> Result<Vec<f32>, ImportError> {
        if self.tensor(t)?.type_() != fb::TensorType::FLOAT32 {
            return fail(format!("tensor {t} is not float32"));
        }
        let d = self.data(t)?;
        if d.len() != 4 * len {
            return fail(format!(
                "tensor {t} holds {} bytes, not {}",
                d.len(),
                4 * len
            ));
        }
        Ok(d.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A layer's weights: int8 filters with their scales and int32 bias
    /// when its input is int8, else float32 ones (`len` filter values,
    /// `channels` biases).
    fn layer_weights(
        &self,
        ins: &[i32],
        out: i32,
        len: usize,
        channels: usize,
    ) -> Result<(Weights, TensorType), ImportError> {
        let bias = ins.get(2).copied().filter(|&t| t >= 0);
        match (self.ty(ins[0])?, self.ty(out)?) {
            (TensorType::I8(qi), TensorType::I8(qo)) => {
                let (filter, scales) = self.weights(ins[1], len, channels)?;
                let bias = self.bias(bias, channels)?;
                let w = Weights::i8_from_scales(filter, bias, &scales, qi, qo)?;
                Ok((w, TensorType::I8(qo)))
            }
            (TensorType::I16(qi), TensorType::I16(qo)) => {
                let (filter, scales) = self.weights(ins[1], len, channels)?;
                let bias = self.bias64(bias, channels)?;
                let w = Weights::i16_from_scales(filter, bias, &scales, qi, qo)?;
                Ok((w, TensorType::I16(qo)))
            }
            (TensorType::F32, TensorType::F32) => {
                let filter = self.floats(ins[1], len)?;
                let bias = match bias {
                    Some(t) => self.floats(t, channels)?,
                    None => vec![0.0; channels],
                };
                Ok((Weights::F32 { filter, bias }, TensorType::F32))
            }
            _ => fail("mixes float and int8 tensors"),
        }
    }

    /// A constant tensor's bytes.
    fn data(&self, t: i32) -> Result<&'a [u8], ImportError> {
        let tensor = self.tensor(t)?;
        let buffers = self
            .model
            .buffers()
            .ok_or_else(|| ImportError("the model has no buffers".into()))?;
        let b = tensor.buffer() as usize;
        if b == 0 || b >= buffers.len() {
            return fail(format!("tensor {t} is not a constant (buffer {b})"));
        }
        let buf = buffers.get(b);
        if buf.offset() != 0 {
            return fail(format!(
                "tensor {t}: buffers outside the flatbuffer are not read"
            ));
        }
        Ok(buf.data().map(|d| d.bytes()).unwrap_or(&[]))
    }

    /// A constant int8 tensor of `len` values and its per-channel (or
    /// per-tensor, repeated) weight scales for `channels` channels.
    fn weights(
        &self,
        t: i32,
        len: usize,
        channels: usize,
    ) -> Result<(Vec<i8>, Vec<f32>), ImportError> {
        let tensor = self.tensor(t)?;
        if tensor.type_() != fb::TensorType::INT8 {
            return fail(format!("weights tensor {t} is not int8"));
        }
        let d = self.data(t)?;
        if d.len() != len {
            return fail(format!(
                "weights tensor {t} holds {} bytes, not {len}",
                d.len()
            ));
        }
        let q = tensor
            .quantization()
            .and_then(|q| q.scale())
            .ok_or_else(|| ImportError(format!("weights tensor {t} has no scales")))?;
        let scales: Vec<f32> = match q.len() {
            1 => vec![q.get(0); channels],
            n if n == channels => q.iter().collect(),
            n => {
                return fail(format!(
                    "weights tensor {t} has {n} scales for {channels} channels"
                ))
            }
        };
        Ok((d.iter().map(|&b| b as i8).collect(), scales))
    }

    /// A constant int32 bias of `n` values (zeros when the op has none).
    fn bias(&self, t: Option<i32>, n: usize) -> Result<Vec<i32>, ImportError> {
        let Some(t) = t.filter(|&t| t >= 0) else {
            return Ok(vec![0; n]);
        };
        if self.tensor(t)?.type_() != fb::TensorType::INT32 {
            return fail(format!("bias tensor {t} is not int32"));
        }
        let d = self.data(t)?;
        if d.len() != 4 * n {
            return fail(format!(
                "bias tensor {t} holds {} bytes, not {}",
                d.len(),
                4 * n
            ));
        }
        Ok(d.chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A 16x8 layer's bias: int64 (or int32) values, zeros when none.
    fn bias64(&self, t: Option<i32>, n: usize) -> Result<Vec<i64>, ImportError> {
        let Some(t) = t.filter(|&t| t >= 0) else {
            return Ok(vec![0; n]);
        };
        if self.tensor(t)?.type_() == fb::TensorType::INT32 {
            return Ok(self.bias(Some(t), n)?.into_iter().map(i64::from).collect());
        }
        if self.tensor(t)?.type_() != fb::TensorType::INT64 {
            return fail(format!("bias tensor {t} is not int64 or int32"));
        }
        let d = self.data(t)?;
        if d.len() != 8 * n {
            return fail(format!(
                "bias tensor {t} holds {} bytes, not {}",
                d.len(),
                8 * n
            ));
        }
        Ok(d.chunks_exact(8)
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect())
    }

    /// A constant int32 tensor's values.
    fn int32s(&self, t: i32) -> Result<Vec<i32>, ImportError> {
        if self.tensor(t)?.type_() != fb::TensorType::INT32 {
            return fail(format!("tensor {t} is not int32"));
        }
        Ok(self
            .data(t)?
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn id(&self, t: i32) -> Result<TensorId, ImportError> {
        match usize::try_from(t).ok().map(|i| self.ids.get(i)) {
            Some(Some(Some(id))) => Ok(*id),
            Some(Some(None)) => fail(format!("tensor {t} is used before an op makes it")),
            _ => fail(format!(
                "tensor index {t} is outside the {} tensors",
                self.ids.len()
            )),
        }
    }

    fn set(&mut self, t: i32, id: TensorId) -> Result<(), ImportError> {
        let i = usize::try_from(t).map_err(|_| ImportError(format!("output tensor {t}")))?;
        if i >= self.ids.len() {
            return fail(format!("output tensor {t} is outside the tensors"));
        }
        self.ids[i] = Some(id);
        Ok(())
    }

    fn run(mut self) -> Result<Vec<u8>, ImportError> {
        self.ids = vec![None; self.tensors()?.len()];
        let ops = self
            .graph
            .operators()
            .map(|o| o.iter().collect::<Vec<_>>())
            .unwrap_or_default();
        let codes = self
            .model
            .operator_codes()
            .ok_or_else(|| ImportError("no operator codes".into()))?;
        let inputs: Vec<i32> = self
            .graph
            .inputs()
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let outputs: Vec<i32> = self
            .graph
            .outputs()
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        if inputs.len() != 1 {
            return fail(format!(
                "{} model inputs (this imports models with one)",
                inputs.len()
            ));
        }
        let code_of = |op: &fb::Operator<'_>| -> Result<fb::BuiltinOperator, ImportError> {
            let i = op.opcode_index() as usize;
            if i >= codes.len() {
                return fail(format!(
                    "operator code {i} is outside the {} codes",
                    codes.len()
                ));
            }
            let c = codes.get(i);
            // Codes below 127 may sit in the deprecated one-byte field.
            Ok(fb::BuiltinOperator(
                c.builtin_code().0.max(c.deprecated_builtin_code() as i32),
            ))
        };
        // A float input quantized by the first op: the blob takes the int8 tensor.
        let mut input = inputs[0];
        if let Some(first) = ops.first() {
            let io = |v: Option<flatbuffers::Vector<'_, i32>>| {
                v.map(|v| v.iter().collect::<Vec<_>>()).unwrap_or_default()
            };
            if code_of(first)? == fb::BuiltinOperator::QUANTIZE && io(first.inputs()) == [input] {
                input = io(first.outputs()).first().copied().unwrap_or(-1);
            }
        }
        let ty = self.ty(input)?;
        let id = self.builder.input(self.shape(input)?, ty);
        self.set(input, id)?;
        let mut model_outputs = outputs.clone();
        for (k, op) in ops.iter().enumerate() {
            let code = code_of(op)?;
            let ins: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
            let outs: Vec<i32> = op.outputs().map(|v| v.iter().collect()).unwrap_or_default();
            let at = |e: ImportError| match e.0.as_str() {
                "is not supported" => {
                    ImportError(format!("op {k} {} is not supported", op_name(code)))
                }
                m => ImportError(format!("op {k} {}: {m}", op_name(code))),
            };
            if outs.len() != 1 || ins.is_empty() {
                return Err(at(ImportError(format!(
                    "{} inputs and {} outputs",
                    ins.len(),
                    outs.len()
                ))));
            }
            // Shape arithmetic in int32 (Keras's flatten computes the
            // reshape's target this way): the reshape's output shape is
            // recorded, so these ops are left out.
            let shape_math = matches!(
                code,
                fb::BuiltinOperator::SHAPE
                    | fb::BuiltinOperator::STRIDED_SLICE
                    | fb::BuiltinOperator::PACK
                    | fb::BuiltinOperator::CONCATENATION
            ) && self.tensor(outs[0])?.type_() == fb::TensorType::INT32;
            if shape_math {
                continue;
            }
            match code {
                fb::BuiltinOperator::QUANTIZE if k == 0 && outs[0] == input => continue,
                fb::BuiltinOperator::DEQUANTIZE if outputs.contains(&outs[0]) => {
                    for o in model_outputs.iter_mut().filter(|o| **o == outs[0]) {
                        *o = ins[0];
                    }
                    continue;
                }
                _ => {}
            }
            let id = self.op(k, code, op, &ins, outs[0]).map_err(at)?;
            self.set(outs[0], id)?;
        }
        for &o in &model_outputs {
            let id = self.id(o)?;
            self.builder.output(id);
        }
        Ok(self.builder.finish()?)
    }

    fn activation(f: fb::ActivationFunctionType) -> Result<Activation, ImportError> {
        match f {
            fb::ActivationFunctionType::NONE => Ok(Activation::None),
            fb::ActivationFunctionType::RELU => Ok(Activation::Relu),
            fb::ActivationFunctionType::RELU6 => Ok(Activation::Relu6),
            other => fail(format!(
                "fused activation {} is not supported",
                other.variant_name().unwrap_or("?")
            )),
        }
    }

    fn padding(p: fb::Padding) -> Padding {
        if p == fb::Padding::SAME {
            Padding::Same
        } else {
            Padding::Valid
        }
    }

    fn op(
        &mut self,
        k: usize,
        code: fb::BuiltinOperator,
        op: &fb::Operator<'a>,
        ins: &[i32],
        out: i32,
    ) -> Result<TensorId, ImportError> {
        let name = format!("{}_{k}", op_name(code).to_lowercase());
        let conv = matches!(
            code,
            fb::BuiltinOperator::CONV_2D | fb::BuiltinOperator::DEPTHWISE_CONV_2D
        );
        // A padded tensor reaches a convolution as its own padding.
        let padded = self.pads.iter().find(|p| p.0 == ins[0]).copied();
        if code != fb::BuiltinOperator::PAD {
            if let Some(&(t, _, _)) = self
                .pads
                .iter()
                .find(|p| ins.contains(&p.0) && !(conv && p.0 == ins[0]))
            {
                return fail(format!(
                    "takes tensor {t}, which a PAD made: only convolutions take those"
                ));
            }
        }
        let x = self.id(padded.map_or(ins[0], |p| p.1))?;
        let in_shape = self.shape(padded.map_or(ins[0], |p| p.1))?;
        // A PAD before a convolution: its cells, plus SAME's over the
        // padded tensor, as explicit padding.
        let pad_of = |p: fb::Padding,
                      k: [usize; 2],
                      s: [usize; 2],
                      d: [usize; 2]|
         -> Result<Padding, ImportError> {
            let Some((_, _, [top, bottom, left, right])) = padded else {
                return Ok(Self::padding(p));
            };
            let same = |len: usize, k: usize, s: usize, d: usize| {
                if p == fb::Padding::VALID {
                    return (0, 0);
                }
                let out = len.div_ceil(s);
                let total = ((out - 1) * s + (k - 1) * d + 1).saturating_sub(len);
                (total / 2, total - total / 2)
            };
            let (t, b) = same(in_shape.h + top + bottom, k[0], s[0], d[0]);
            let (l, r) = same(in_shape.w + left + right, k[1], s[1], d[1]);
            Ok(Padding::Explicit {
                top: top + t,
                bottom: bottom + b,
                left: left + l,
                right: right + r,
            })
        };
        let missing = |what: &str| ImportError(format!("no {what} options"));
        let pos = |v: i32, what: &str| {
            usize::try_from(v)
                .ok()
                .filter(|&v| (1..=1 << 16).contains(&v))
                .ok_or_else(|| ImportError(format!("{what} {v}")))
        };
        match code {
            fb::BuiltinOperator::CONV_2D | fb::BuiltinOperator::DEPTHWISE_CONV_2D => {
                if ins.len() < 2 {
                    return fail("no filter");
                }
                let dims: Vec<i32> = self
                    .tensor(ins[1])?
                    .shape()
                    .map(|s| s.iter().collect())
                    .unwrap_or_default();
                let [o, kh, kw, i] = dims[..] else {
                    return fail(format!("filter shape {dims:?}"));
                };
                let (o, kh, kw, i) = (
                    pos(o, "filter")?,
                    pos(kh, "filter")?,
                    pos(kw, "filter")?,
                    pos(i, "filter")?,
                );
                let (config, act, channels) = if code == fb::BuiltinOperator::CONV_2D {
                    let p = op
                        .builtin_options_as_conv_2_doptions()
                        .ok_or_else(|| missing("CONV_2D"))?;
                    if i != in_shape.c {
                        return fail(format!(
                            "filter depth {i} for {} input channels (groups are not read)",
                            in_shape.c
                        ));
                    }
                    let s = [pos(p.stride_h(), "stride")?, pos(p.stride_w(), "stride")?];
                    let d = [
                        pos(p.dilation_h_factor(), "dilation")?,
                        pos(p.dilation_w_factor(), "dilation")?,
                    ];
                    let c = Conv2dConfig::new(in_shape, o, kh, kw)
                        .stride(s[0], s[1])
                        .dilation(d[0], d[1])
                        .padding(pad_of(p.padding(), [kh, kw], s, d)?);
                    (c, Self::activation(p.fused_activation_function())?, o)
                } else {
                    let p = op
                        .builtin_options_as_depthwise_conv_2_doptions()
                        .ok_or_else(|| missing("DEPTHWISE_CONV_2D"))?;
                    // Filter [1, H, W, C * multiplier].
                    if o != 1 || i % in_shape.c != 0 {
                        return fail(format!(
                            "filter shape {dims:?} for {} input channels",
                            in_shape.c
                        ));
                    }
                    let s = [pos(p.stride_h(), "stride")?, pos(p.stride_w(), "stride")?];
                    let d = [
                        pos(p.dilation_h_factor(), "dilation")?,
                        pos(p.dilation_w_factor(), "dilation")?,
                    ];
                    let c = Conv2dConfig::depthwise(in_shape, i / in_shape.c, kh, kw)
                        .stride(s[0], s[1])
                        .dilation(d[0], d[1])
                        .padding(pad_of(p.padding(), [kh, kw], s, d)?);
                    (c, Self::activation(p.fused_activation_function())?, i)
                };
                let len = [o, kh, kw, i]
                    .iter()
                    .try_fold(1usize, |a, &b| a.checked_mul(b))
                    .ok_or_else(|| ImportError(format!("filter shape {dims:?}")))?;
                let (w, ty) = self.layer_weights(ins, out, len, channels)?;
                Ok(self.builder.conv2d(&name, x, config, act, w, ty)?)
            }
            fb::BuiltinOperator::FULLY_CONNECTED => {
                let p = op
                    .builtin_options_as_fully_connected_options()
                    .ok_or_else(|| missing("FULLY_CONNECTED"))?;
                if p.weights_format() != fb::FullyConnectedOptionsWeightsFormat::DEFAULT {
                    return fail("shuffled weights are not read");
                }
                let dims: Vec<i32> = self
                    .tensor(ins[1])?
                    .shape()
                    .map(|s| s.iter().collect())
                    .unwrap_or_default();
                let [n_out, n_in] = dims[..] else {
                    return fail(format!("weights shape {dims:?}"));
                };
                let (n_out, n_in) = (pos(n_out, "outputs")?, pos(n_in, "inputs")?);
                if n_in != in_shape.len() {
                    return fail(format!("{n_in} inputs for a tensor of {}", in_shape.len()));
                }
                let len = n_out
                    .checked_mul(n_in)
                    .ok_or_else(|| ImportError(format!("weights shape {dims:?}")))?;
                let (w, ty) = self.layer_weights(ins, out, len, n_out)?;
                let act = Self::activation(p.fused_activation_function())?;
                Ok(self.builder.dense(&name, x, n_out, act, w, ty)?)
            }
            fb::BuiltinOperator::MAX_POOL_2D | fb::BuiltinOperator::AVERAGE_POOL_2D => {
                let p = op
                    .builtin_options_as_pool_2_doptions()
                    .ok_or_else(|| missing("pooling"))?;
                if Self::activation(p.fused_activation_function())? != Activation::None {
                    return fail("a fused activation on a pool is not read");
                }
                self.same_ty(ins[0], out)?;
                let window = [
                    pos(p.filter_height(), "window")?,
                    pos(p.filter_width(), "window")?,
                ];
                let stride = [pos(p.stride_h(), "stride")?, pos(p.stride_w(), "stride")?];
                let padding = Self::padding(p.padding());
                Ok(if code == fb::BuiltinOperator::MAX_POOL_2D {
                    self.builder.max_pool(&name, x, window, stride, padding)?
                } else {
                    self.builder.avg_pool(&name, x, window, stride, padding)?
                })
            }
            fb::BuiltinOperator::ADD => {
                let p = op
                    .builtin_options_as_add_options()
                    .ok_or_else(|| missing("ADD"))?;
                if ins.len() != 2 {
                    return fail(format!("{} inputs", ins.len()));
                }
                let y = self.id(ins[1])?;
                let act = Self::activation(p.fused_activation_function())?;
                Ok(self.builder.add(&name, x, y, act, self.ty(out)?)?)
            }
            fb::BuiltinOperator::CONCATENATION => {
                let p = op
                    .builtin_options_as_concatenation_options()
                    .ok_or_else(|| missing("CONCATENATION"))?;
                if !matches!(p.axis(), 3 | -1) {
                    return fail(format!("axis {}: channels only", p.axis()));
                }
                if Self::activation(p.fused_activation_function())? != Activation::None {
                    return fail("a fused activation on a concatenation is not read");
                }
                let xs = ins
                    .iter()
                    .map(|&t| self.id(t))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(self.builder.concat(&name, &xs, self.ty(out)?)?)
            }
            fb::BuiltinOperator::RESHAPE => {
                let to = self.shape(out)?;
                if to.h != 1 || to.w != 1 || to.c != in_shape.len() {
                    return fail(format!("to {to}: only a flattening is read"));
                }
                self.same_ty(ins[0], out)?;
                // Dense layers read any shape in NHWC order: the same tensor.
                Ok(x)
            }
            fb::BuiltinOperator::SOFTMAX => {
                let p = op
                    .builtin_options_as_softmax_options()
                    .ok_or_else(|| missing("SOFTMAX"))?;
                let ty = self.ty(out)?;
                if matches!(ty, TensorType::I8(q) if q != QParams::new(1.0 / 256.0, -128)?) {
                    return fail(
                        "an int8 softmax's output must have scale 1/256 and zero point -128",
                    );
                }
                Ok(self.builder.softmax(&name, x, p.beta())?)
            }
            fb::BuiltinOperator::RELU | fb::BuiltinOperator::RELU6 => {
                let act = if code == fb::BuiltinOperator::RELU {
                    Activation::Relu
                } else {
                    Activation::Relu6
                };
                // TensorFlow Lite divides the scales in single precision here.
                let ty = self.ty(out)?;
                Ok(self.builder.activation_with(
                    &name,
                    x,
                    act,
                    ty,
                    crate::quant::Rescale::new_single,
                )?)
            }
            fb::BuiltinOperator::MEAN => {
                let axes =
                    self.int32s(*ins.get(1).ok_or_else(|| ImportError("no axes".into()))?)?;
                let mut sorted: Vec<i32> = axes
                    .iter()
                    .map(|&a| if a < 0 { a + 4 } else { a })
                    .collect();
                sorted.sort_unstable();
                if sorted != [1, 2] {
                    return fail(format!(
                        "axes {axes:?}: only the mean over height and width is read"
                    ));
                }
                self.ty(ins[0])?;
                Ok(self.builder.mean(&name, x, self.ty(out)?)?)
            }
            fb::BuiltinOperator::QUANTIZE => {
                // Between two tensors of one integer type: a requantization.
                let (from, to) = (self.ty(ins[0])?, self.ty(out)?);
                if from == TensorType::F32 || from.dtype_name() != to.dtype_name() {
                    return fail(format!(
                        "from {} to {} is not read inside a network",
                        from.dtype_name(),
                        to.dtype_name()
                    ));
                }
                Ok(self.builder.activation(&name, x, Activation::None, to)?)
            }
            fb::BuiltinOperator::PAD => {
                self.same_ty(ins[0], out)?;
                let p = ins
                    .get(1)
                    .copied()
                    .ok_or_else(|| ImportError("no paddings".into()))?;
                let v = self.int32s(p)?;
                let cells = |i: usize| usize::try_from(v[i]).ok().filter(|&c| c <= 1 << 12);
                let [0, 0, _, _, _, _, 0, 0] = v[..] else {
                    return fail(format!("paddings {v:?}: rows and columns only"));
                };
                let (Some(top), Some(bottom), Some(left), Some(right)) =
                    (cells(2), cells(3), cells(4), cells(5))
                else {
                    return fail(format!("paddings {v:?}"));
                };
                self.pads.push((out, ins[0], [top, bottom, left, right]));
                // The convolution after it reads the unpadded tensor.
                Ok(x)
            }
            _ => fail("is not supported"),
        }
    }
}
