//! ONNX models: float32, and int8 in QDQ form (as onnxruntime's
//! `quantize_static` writes them: `QuantizeLinear` / `DequantizeLinear`
//! around float ops, int8 weights with per-channel scales, int32 biases;
//! uint8 activations become int8 ones with their zero point moved by 128,
//! as TensorFlow Lite does). Read with `prost` and ONNX's schema.
//!
//! NCHW tensors become the blob's NHWC once, here: convolution filters
//! are reordered, and a dense layer after a `Flatten` of an image takes
//! its columns in the blob's order. Batch normalisation after a float
//! convolution is folded into it, and a ReLU or `Clip(0, 6)` after a
//! float convolution or dense layer becomes its fused activation.
//!
//! Taken: `Conv` (groups, dilation, pads), `Gemm`, `MatMul` (with an
//! `Add` of a constant as its bias), `MaxPool`, `AveragePool`,
//! `GlobalAveragePool`, `Add`, `Concat` (channels), `Relu`, `Clip` (0 to
//! 6 or unbounded), `Flatten`, `Reshape` to a flat vector, `Softmax`,
//! `BatchNormalization` after a float convolution, `Identity`, `Dropout`,
//! `Constant`, and the QDQ pairs. Anything else is refused with the op's
//! index and type.
//!
//! int8 outputs follow picocnn's (TensorFlow Lite's) fixed-point
//! arithmetic, not onnxruntime's, which requantizes in single precision
//! and rounds half to even: they differ by a step now and then.

use std::collections::HashMap;
use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use prost::Message;

use super::{fail, ImportError, Options};
use crate::model::writer::{ModelBuilder, TensorId, TensorType};
use crate::quant::{Activation, QParams};
use crate::tensor::Shape;

#[allow(
    clippy::all,
    missing_docs,
    dead_code,
    unused_imports,
    deprecated,
    rustdoc::all
)]
#[rustfmt::skip]
mod onnx_proto;
mod layers;
mod tensors;
#[cfg(test)]
mod tests;

use onnx_proto as pb;
use tensors::{constant, Const, Data, QConst};

/// Reads an ONNX model (`.onnx` bytes) and writes it as a picocnn blob
/// named `name`.
///
/// ```no_run
/// let onnx = std::fs::read("lenet5.onnx")?;
/// let blob = picocnn::import::onnx(&onnx, "lenet5")?;
/// std::fs::write("lenet5.pcnn", blob)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn onnx(bytes: &[u8], name: &str) -> Result<Vec<u8>, ImportError> {
    onnx_with(
        bytes,
        &Options {
            name,
            ..Options::default()
        },
    )
}

/// [`onnx`](fn@onnx) with the blob's labels and input normalisation.
pub fn onnx_with(bytes: &[u8], options: &Options<'_>) -> Result<Vec<u8>, ImportError> {
    let model = pb::ModelProto::decode(bytes)
        .map_err(|e| ImportError(format!("not an ONNX model: {e}")))?;
    let Some(graph) = model.graph.as_ref() else {
        return fail("not an ONNX model: no graph");
    };
    if let Some(set) = model
        .opset_import
        .iter()
        .find(|s| s.domain().is_empty() || s.domain() == "ai.onnx")
    {
        if !(7..=23).contains(&set.version()) {
            return fail(format!(
                "opset {} (this reads opsets 7 to 23)",
                set.version()
            ));
        }
    }
    let mut builder = ModelBuilder::new(options.name);
    if !options.labels.is_empty() {
        builder.labels(options.labels);
    }
    if let Some((scale, offset)) = options.normalisation {
        builder.normalisation(scale, offset);
    }
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, n) in graph.node.iter().enumerate() {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            consumers.entry(i.as_str()).or_default().push(k);
        }
    }
    let mut importer = Importer {
        graph,
        builder,
        consts: HashMap::new(),
        qconsts: HashMap::new(),
        vals: HashMap::new(),
        consumers,
        outputs: graph.output.iter().map(|o| o.name().to_string()).collect(),
        skip: vec![false; graph.node.len()],
    };
    for t in &graph.initializer {
        importer.consts.insert(t.name().to_string(), constant(t)?);
    }
    importer.run()
}

/// A tensor the blob holds.
#[derive(Debug, Clone, Copy)]
struct Val {
    id: TensorId,
    /// The blob tensor's shape (NHWC).
    shape: Shape,
    ty: TensorType,
    /// Flattened (`Flatten`, `Reshape`): the order of its values is the
    /// blob's, not ONNX's, when the shape has more than one cell.
    flat: bool,
}

struct Importer<'a> {
    graph: &'a pb::GraphProto,
    builder: ModelBuilder,
    consts: HashMap<String, Const>,
    qconsts: HashMap<String, QConst>,
    vals: HashMap<String, Val>,
    consumers: HashMap<&'a str, Vec<usize>>,
    outputs: Vec<String>,
    /// Nodes an earlier one took in (a folded normalisation or bias, a
    /// fused activation, the quantization of the input).
    skip: Vec<bool>,
}

fn attr<'n>(node: &'n pb::NodeProto, name: &str) -> Option<&'n pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name() == name)
}

fn attr_i(node: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_f(node: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).and_then(|a| a.f).unwrap_or(default)
}

fn attr_ints(node: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_s(node: &pb::NodeProto, name: &str) -> String {
    attr(node, name)
        .and_then(|a| a.s.as_deref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default()
}

/// A size from a model file: positive and not absurd.
fn size(v: i64, what: &str) -> Result<usize, ImportError> {
    usize::try_from(v)
        .ok()
        .filter(|&v| (1..=1 << 16).contains(&v))
        .ok_or_else(|| ImportError(format!("{what} {v}")))
}

/// A padding cell count from a model file.
fn cells(v: i64) -> Result<usize, ImportError> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v <= 1 << 12)
        .ok_or_else(|| ImportError(format!("padding {v}")))
}

/// The int8 quantization of a `QuantizeLinear` or `DequantizeLinear` on
/// an activation (uint8's zero point moved to int8's).
fn act_qparams(scale: &Const, zp: Option<&Const>) -> Result<QParams, ImportError> {
    let s = scale.data.reals();
    let (z, unsigned) = match zp {
        Some(c) => (c.data.ints(), matches!(c.data, Data::U8(_))),
        None => (vec![0], false),
    };
    if s.len() != 1 || z.len() != 1 {
        return fail("an activation needs one scale and one zero point");
    }
    if !matches!(
        zp.map(|c| &c.data),
        None | Some(Data::I8(_)) | Some(Data::U8(_))
    ) {
        return fail("activations are int8 or uint8");
    }
    let zp = if unsigned { z[0] - 128 } else { z[0] };
    Ok(QParams::new(s[0], zp as i32)?)
}

impl<'a> Importer<'a> {
    fn node(&self, k: usize) -> &'a pb::NodeProto {
        &self.graph.node[k]
    }

    fn val(&self, name: &str) -> Result<Val, ImportError> {
        self.vals.get(name).copied().ok_or_else(|| {
            if self.consts.contains_key(name) || self.qconsts.contains_key(name) {
                ImportError(format!("{name} is a constant where a tensor is read"))
            } else {
                ImportError(format!("{name} is read before an op makes it"))
            }
        })
    }

    fn constant(&self, name: &str) -> Result<&Const, ImportError> {
        self.consts
            .get(name)
            .ok_or_else(|| ImportError(format!("{name} is not a constant")))
    }

    /// The only consumer of `name`, when it is a node of type `op` and
    /// `name` is not a model output.
    fn sole(&self, name: &str, op: &str) -> Option<usize> {
        match self.consumers.get(name).map(|v| &v[..]) {
            Some(&[k])
                if self.node(k).op_type() == op && !self.outputs.iter().any(|o| o == name) =>
            {
                Some(k)
            }
            _ => None,
        }
    }

    /// The quantization `QuantizeLinear` gives the float output `name` of a
    /// quantized op.
    fn out_qparams(&self, name: &str) -> Result<QParams, ImportError> {
        let q = self
            .consumers
            .get(name)
            .into_iter()
            .flatten()
            .map(|&k| self.node(k))
            .find(|n| n.op_type() == "QuantizeLinear")
            .ok_or_else(|| {
                ImportError(
                    "a quantized op's float output is not read (no QuantizeLinear after it)".into(),
                )
            })?;
        let scale = self.constant(q.input.get(1).map_or("", String::as_str))?;
        let zp = match q.input.get(2).filter(|s| !s.is_empty()) {
            Some(z) => Some(self.constant(z)?),
            None => None,
        };
        act_qparams(scale, zp)
    }

    /// The output type of an op on `input` writing `name`: float for a
    /// float input, else the quantization after it.
    fn out_ty(&self, input: &Val, name: &str) -> Result<TensorType, ImportError> {
        match input.ty {
            TensorType::I8(_) => Ok(TensorType::I8(self.out_qparams(name)?)),
            other => Ok(other),
        }
    }

    fn run(mut self) -> Result<Vec<u8>, ImportError> {
        let inits: Vec<&str> = self.graph.initializer.iter().map(|t| t.name()).collect();
        let inputs: Vec<&pb::ValueInfoProto> = self
            .graph
            .input
            .iter()
            .filter(|i| !inits.contains(&i.name()))
            .collect();
        let [input] = inputs[..] else {
            return fail(format!(
                "{} model inputs (this imports models with one)",
                inputs.len()
            ));
        };
        self.input(input)?;
        for k in 0..self.graph.node.len() {
            if self.skip[k] {
                continue;
            }
            let n = self.node(k);
            let at = |e: ImportError| match e.0.as_str() {
                "is not supported" => {
                    ImportError(format!("op {k} {} is not supported", n.op_type()))
                }
                m => ImportError(format!("op {k} {} ({}): {m}", n.op_type(), n.name())),
            };
            if n.output.is_empty() || n.output[0].is_empty() {
                return Err(at(ImportError("no output".into())));
            }
            if !n.domain().is_empty() && n.domain() != "ai.onnx" {
                return Err(at(ImportError(format!(
                    "domain {} is not supported",
                    n.domain()
                ))));
            }
            self.op(k).map_err(at)?;
        }
        let outputs = self.outputs.clone();
        for o in &outputs {
            let v = self
                .val(o)
                .map_err(|e| ImportError(format!("model output {o}: {e}")))?;
            self.builder.output(v.id);
        }
        Ok(self.builder.finish()?)
    }

    /// The model's input: NCHW (or `[N, K]`), float32; quantized by
    /// `QuantizeLinear` right away, the blob takes the int8 tensor.
    fn input(&mut self, input: &pb::ValueInfoProto) -> Result<(), ImportError> {
        let name = input.name().to_string();
        let bad = |why: &str| ImportError(format!("model input {name}: {why}"));
        let Some(pb::type_proto::Value::TensorType(t)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(bad("not a tensor"));
        };
        if t.elem_type() != 1 {
            return Err(bad("not float32"));
        }
        let dims: Vec<Option<i64>> = t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => Some(v),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let n = |d: Option<i64>| {
            d.and_then(|d| usize::try_from(d).ok())
                .filter(|&d| (1..=1 << 16).contains(&d))
                .ok_or_else(|| {
                    bad(&format!(
                        "shape {dims:?}: this takes [1, C, H, W] or [1, K]"
                    ))
                })
        };
        let batch_ok = |d: Option<i64>| matches!(d, None | Some(1));
        let shape = match dims[..] {
            [b, c, h, w] if batch_ok(b) => Shape::new(n(h)?, n(w)?, n(c)?),
            [b, k] if batch_ok(b) => Shape::new(1, 1, n(k)?),
            _ => {
                return Err(bad(&format!(
                    "shape {dims:?}: this takes [1, C, H, W] or [1, K]"
                )))
            }
        };
        if shape.len() > 1 << 24 {
            return Err(bad("too large"));
        }
        // Quantized at once: the blob's input is the int8 tensor.
        let quantizers: Vec<usize> = self
            .consumers
            .get(name.as_str())
            .cloned()
            .unwrap_or_default();
        let all_q = !quantizers.is_empty()
            && quantizers
                .iter()
                .all(|&k| self.node(k).op_type() == "QuantizeLinear");
        let mut ty = TensorType::F32;
        if all_q {
            let mut q = None;
            for &k in &quantizers {
                let node = self.node(k);
                let scale = self.constant(node.input.get(1).map_or("", String::as_str))?;
                let zp = match node.input.get(2).filter(|s| !s.is_empty()) {
                    Some(z) => Some(self.constant(z)?),
                    None => None,
                };
                let this = act_qparams(scale, zp)?;
                if q.is_some_and(|q| q != this) {
                    return Err(bad("quantized two ways"));
                }
                q = Some(this);
            }
            ty = TensorType::I8(q.unwrap_or(QParams {
                scale: 1.0,
                zero_point: 0,
            }));
        }
        let id = self.builder.input(shape, ty);
        let val = Val {
            id,
            shape,
            ty,
            flat: dims.len() == 2,
        };
        if all_q {
            for &k in &quantizers {
                self.skip[k] = true;
                let out = self.node(k).output.first().cloned().unwrap_or_default();
                self.vals.insert(out, val);
            }
        }
        self.vals.insert(name, val);
        Ok(())
    }

    fn op(&mut self, k: usize) -> Result<(), ImportError> {
        let n = self.node(k);
        let out = n.output[0].clone();
        let name = if n.name().is_empty() {
            format!("{}_{k}", n.op_type().to_lowercase())
        } else {
            n.name().to_string()
        };
        let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty()).map(String::as_str);
        let first = input(0).ok_or_else(|| ImportError("no input".into()))?;
        let val = match n.op_type() {
            "Constant" => {
                let t = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| ImportError("only tensor constants are read".into()))?;
                let c = constant(t)?;
                self.consts.insert(out, c);
                return Ok(());
            }
            "DequantizeLinear" => return self.dequantize(n, &out),
            "QuantizeLinear" => {
                let x = self.val(first)?;
                let scale = self.constant(input(1).unwrap_or(""))?;
                let zp = match input(2) {
                    Some(z) => Some(self.constant(z)?),
                    None => None,
                };
                let q = act_qparams(scale, zp)?;
                match x.ty {
                    TensorType::I8(had) if had == q => x,
                    TensorType::I8(_) => {
                        // A requantization.
                        let id = self.builder.activation(
                            &name,
                            x.id,
                            Activation::None,
                            TensorType::I8(q),
                        )?;
                        Val {
                            id,
                            ty: TensorType::I8(q),
                            ..x
                        }
                    }
                    _ => return fail("a float tensor quantized inside the network is not read"),
                }
            }
            "Identity" | "Dropout" => self.val(first)?,
            "Conv" => self.conv(n, &name, &out)?,
            "Gemm" | "MatMul" => self.dense(k, &name, &out)?,
            "MaxPool" | "AveragePool" => self.pool(n, &name, &out)?,
            "GlobalAveragePool" => {
                let x = self.val(first)?;
                let ty = self.out_ty(&x, &out)?;
                let id = self.builder.mean(&name, x.id, ty)?;
                Val {
                    id,
                    shape: Shape::new(1, 1, x.shape.c),
                    ty,
                    flat: false,
                }
            }
            "Flatten" | "Reshape" => {
                let x = self.val(first)?;
                let to_flat = if n.op_type() == "Flatten" {
                    attr_i(n, "axis", 1) == 1
                } else {
                    let target = self.constant(input(1).unwrap_or(""))?.data.ints();
                    let len = x.shape.len() as i64;
                    matches!(target[..], [a, b] if (a == 1 || a == -1 || a == 0) && (b == len || b == -1))
                };
                if !to_flat {
                    return fail("only a flattening to [1, K] is read");
                }
                let v = Val { flat: true, ..x };
                self.requantized(v, &name, &out)?
            }
            "Add" => {
                let (a, b) = (self.val(first)?, self.val(input(1).unwrap_or(""))?);
                if a.shape != b.shape || a.flat != b.flat {
                    return fail("adds tensors of two shapes (broadcasts are not read)");
                }
                let ty = self.out_ty(&a, &out)?;
                let (act, fused) = self.fused_activation(&out, ty)?;
                let id = self.builder.add(&name, a.id, b.id, act, ty)?;
                return self.set(fused, Val { id, ty, ..a });
            }
            "Concat" => {
                let xs = n
                    .input
                    .iter()
                    .map(|i| self.val(i))
                    .collect::<Result<Vec<_>, _>>()?;
                let rank = if xs[0].flat { 2 } else { 4 };
                let axis = attr_i(n, "axis", 1);
                if axis != 1 && axis != 1 - rank {
                    return fail(format!("axis {axis}: channels only"));
                }
                if xs.iter().any(|v| v.flat && v.shape.h * v.shape.w > 1) {
                    return fail("joins flattened images");
                }
                let ty = self.out_ty(&xs[0], &out)?;
                let ids: Vec<TensorId> = xs.iter().map(|v| v.id).collect();
                let id = self.builder.concat(&name, &ids, ty)?;
                let shape = self.builder.shape(id)?;
                Val {
                    id,
                    shape,
                    ty,
                    flat: xs[0].flat,
                }
            }
            "Relu" | "Clip" => {
                let x = self.val(first)?;
                let act = self.activation_of(n)?;
                let ty = self.out_ty(&x, &out)?;
                let id = self.builder.activation(&name, x.id, act, ty)?;
                Val { id, ty, ..x }
            }
            "Softmax" => {
                let x = self.val(first)?;
                let axis = attr_i(n, "axis", -1);
                if x.shape.h * x.shape.w > 1 || !(axis == -1 || axis == 1) {
                    return fail("only a softmax over the features of a flat tensor is read");
                }
                let id = self.builder.softmax(&name, x.id, 1.0)?;
                let ty = self.builder.tensor_type(id)?;
                let v = Val { id, ty, ..x };
                self.requantized(v, &format!("{name}_requantized"), &out)?
            }
            "BatchNormalization" => {
                return fail("only a batch normalisation after a float convolution is read")
            }
            _ => return fail("is not supported"),
        };
        self.vals.insert(out, val);
        Ok(())
    }

    fn set(&mut self, out: String, v: Val) -> Result<(), ImportError> {
        self.vals.insert(out, v);
        Ok(())
    }

    /// `v` (an op's result of its own fixed quantization) moved to the
    /// quantization after `out` when that differs.
    fn requantized(&mut self, v: Val, name: &str, out: &str) -> Result<Val, ImportError> {
        let TensorType::I8(had) = v.ty else {
            return Ok(v);
        };
        let q = self.out_qparams(out)?;
        if q == had {
            return Ok(v);
        }
        let id = self
            .builder
            .activation(name, v.id, Activation::None, TensorType::I8(q))?;
        Ok(Val {
            id,
            ty: TensorType::I8(q),
            ..v
        })
    }

    /// `DequantizeLinear`: of a constant, a quantized constant for the op
    /// that reads it; of an int8 tensor, the same tensor.
    fn dequantize(&mut self, n: &pb::NodeProto, out: &str) -> Result<(), ImportError> {
        let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty()).map(String::as_str);
        let x = input(0).unwrap_or("");
        let scale = self.constant(input(1).unwrap_or(""))?.clone();
        let zp = match input(2) {
            Some(z) => Some(self.constant(z)?.clone()),
            None => None,
        };
        if let Some(c) = self.consts.get(x) {
            let scales = scale.data.reals();
            let zero_points = zp.map_or(vec![0; scales.len()], |z| z.data.ints());
            if zero_points.len() != scales.len() {
                return fail("scales and zero points differ in number");
            }
            self.qconsts.insert(
                out.to_string(),
                QConst {
                    q: c.clone(),
                    scales,
                    zero_points,
                },
            );
            return Ok(());
        }
        let v = self.val(x)?;
        let q = act_qparams(&scale, zp.as_ref())?;
        if v.ty != TensorType::I8(q) {
            return fail("dequantizes with other parameters than the tensor's");
        }
        self.vals.insert(out.to_string(), v);
        Ok(())
    }

    /// The activation of a `Relu` or `Clip` node.
    fn activation_of(&self, n: &pb::NodeProto) -> Result<Activation, ImportError> {
        if n.op_type() == "Relu" {
            return Ok(Activation::Relu);
        }
        let bound = |i: usize, attr_name: &str, default: f32| -> Result<f32, ImportError> {
            match n.input.get(i).filter(|s| !s.is_empty()) {
                Some(c) => {
                    let v = self.constant(c)?.data.reals();
                    v.first()
                        .copied()
                        .filter(|_| v.len() == 1)
                        .ok_or_else(|| ImportError("a bound is not one value".into()))
                }
                None => Ok(attr_f(n, attr_name, default)),
            }
        };
        let (lo, hi) = (bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?);
        match (lo, hi) {
            (0.0, 6.0) => Ok(Activation::Relu6),
            (0.0, h) if h >= f32::MAX => Ok(Activation::Relu),
            _ => fail(format!(
                "Clip({lo}, {hi}): only 0 to 6 and 0 upward are read"
            )),
        }
    }

    /// A `Relu` or `Clip` alone after `out` (a float layer's output) to
    /// fuse: the activation and the name its output goes by.
    fn fused_activation(
        &mut self,
        out: &str,
        ty: TensorType,
    ) -> Result<(Activation, String), ImportError> {
        if ty != TensorType::F32 {
            return Ok((Activation::None, out.to_string()));
        }
        for op in ["Relu", "Clip"] {
            if let Some(j) = self.sole(out, op) {
                let node = self.node(j);
                if let Ok(act) = self.activation_of(node) {
                    self.skip[j] = true;
                    return Ok((act, node.output.first().cloned().unwrap_or_default()));
                }
            }
        }
        Ok((Activation::None, out.to_string()))
    }
}
