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
use crate::model::writer::{ModelBuilder, TensorId, TensorType, Weights};
use crate::ops::conv::Conv2dConfig;
use crate::ops::Padding;
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
#[path = "onnx_proto.rs"]
mod onnx_proto;

use onnx_proto as pb;

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

/// A constant's values, of its element type.
#[derive(Debug, Clone)]
enum Data {
    F32(Vec<f32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// The values as reals (for scales and the bounds of `Clip`).
    fn reals(&self) -> Vec<f32> {
        match self {
            Data::F32(v) => v.clone(),
            Data::I8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as integers (zero points, shapes, axes).
    fn ints(&self) -> Vec<i64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
        }
    }
}

/// A constant tensor.
#[derive(Debug, Clone)]
struct Const {
    dims: Vec<usize>,
    data: Data,
}

/// A constant stored quantized (`DequantizeLinear` of a constant): its
/// integers, scales and zero points along `axis` (one of each for the
/// whole tensor otherwise).
#[derive(Debug, Clone)]
struct QConst {
    q: Const,
    scales: Vec<f32>,
    zero_points: Vec<i64>,
}

/// The values of a tensor in a model file, checked against its dims.
fn constant(t: &pb::TensorProto) -> Result<Const, ImportError> {
    let name = t.name();
    if t.data_location == Some(1) {
        return fail(format!("tensor {name}: data outside the file is not read"));
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok().filter(|&d| d <= 1 << 28))
        .collect::<Option<_>>()
        .ok_or_else(|| ImportError(format!("tensor {name}: dims {:?}", t.dims)))?;
    let len = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d).filter(|&n| n <= 1 << 28))
        .ok_or_else(|| ImportError(format!("tensor {name}: dims {:?}", t.dims)))?;
    let raw = t.raw_data.as_deref();
    let from_raw = |size: usize| -> Result<Option<&[u8]>, ImportError> {
        match raw {
            Some(r) if r.len() != len * size => {
                fail(format!("tensor {name}: {} bytes for {len} values", r.len()))
            }
            Some(r) => Ok(Some(r)),
            None => Ok(None),
        }
    };
    let data = match t.data_type() {
        1 => Data::F32(match from_raw(4)? {
            Some(r) => r
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            None => t.float_data.clone(),
        }),
        2 => Data::U8(match from_raw(1)? {
            Some(r) => r.to_vec(),
            None => t.int32_data.iter().map(|&v| v as u8).collect(),
        }),
        3 => Data::I8(match from_raw(1)? {
            Some(r) => r.iter().map(|&b| b as i8).collect(),
            None => t.int32_data.iter().map(|&v| v as i8).collect(),
        }),
        6 => Data::I32(match from_raw(4)? {
            Some(r) => r
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            None => t.int32_data.clone(),
        }),
        7 => Data::I64(match from_raw(8)? {
            Some(r) => r
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
            None => t.int64_data.clone(),
        }),
        other => {
            return fail(format!(
                "tensor {name}: element type {other} (this reads float32, int8, uint8, int32 and int64)"
            ))
        }
    };
    if data.len() != len {
        return fail(format!(
            "tensor {name}: {} values for dims {dims:?}",
            data.len()
        ));
    }
    Ok(Const { dims, data })
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
                let (act, fused) = self.fused_activation(k, &out, ty)?;
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
        _k: usize,
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

    /// A layer's weights: float constants, or quantized ones (symmetric,
    /// per output channel or per tensor) for an int8 layer.
    fn weights(&self, name: &str, len: usize, channels: usize) -> Result<WeightsIn, ImportError> {
        if let Some(c) = self.consts.get(name) {
            let Data::F32(w) = &c.data else {
                return fail(format!("weights {name} are not float32"));
            };
            if w.len() != len {
                return fail(format!("weights {name} hold {} values, not {len}", w.len()));
            }
            return Ok(WeightsIn::F32(w.clone()));
        }
        let q = self
            .qconsts
            .get(name)
            .ok_or_else(|| ImportError(format!("weights {name} are not a constant")))?;
        let Data::I8(w) = &q.q.data else {
            return fail(format!(
                "weights {name} are not int8 (asymmetric uint8 weights are not read)"
            ));
        };
        if w.len() != len {
            return fail(format!("weights {name} hold {} values, not {len}", w.len()));
        }
        if q.zero_points.iter().any(|&z| z != 0) {
            return fail(format!(
                "weights {name} are not symmetric (zero point not 0)"
            ));
        }
        let scales = match q.scales.len() {
            1 => vec![q.scales[0]; channels],
            n if n == channels => q.scales.clone(),
            n => {
                return fail(format!(
                    "weights {name}: {n} scales for {channels} channels"
                ))
            }
        };
        Ok(WeightsIn::I8(w.clone(), scales))
    }

    /// A layer's bias: int32 for an int8 layer (from a quantized constant,
    /// or a float one quantized here with `s_in * s_w`), float otherwise.
    fn bias(
        &self,
        name: Option<&str>,
        channels: usize,
        int8: Option<(f32, &[f32])>,
    ) -> Result<Bias, ImportError> {
        let Some(name) = name else {
            return Ok(match int8 {
                Some(_) => Bias::I32(vec![0; channels]),
                None => Bias::F32(vec![0.0; channels]),
            });
        };
        match (int8, self.consts.get(name), self.qconsts.get(name)) {
            (None, Some(c), _) => match &c.data {
                Data::F32(b) if b.len() == channels => Ok(Bias::F32(b.clone())),
                _ => fail(format!("bias {name} is not {channels} float32 values")),
            },
            (Some((s_in, s_w)), Some(c), _) => match &c.data {
                Data::F32(b) if b.len() == channels => Ok(Bias::I32(
                    b.iter()
                        .zip(s_w)
                        .map(|(&b, &s)| crate::quant::round_to_i32(b / (s_in * s)))
                        .collect(),
                )),
                _ => fail(format!("bias {name} is not {channels} float32 values")),
            },
            (Some(_), None, Some(q)) => match &q.q.data {
                Data::I32(b) if b.len() == channels && q.zero_points.iter().all(|&z| z == 0) => {
                    Ok(Bias::I32(b.clone()))
                }
                _ => fail(format!(
                    "bias {name} is not {channels} int32 values of zero point 0"
                )),
            },
            _ => fail(format!(
                "bias {name} is not a constant of this layer's type"
            )),
        }
    }

    fn conv(&mut self, n: &pb::NodeProto, name: &str, out: &str) -> Result<Val, ImportError> {
        let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty()).map(String::as_str);
        let x = self.val(input(0).unwrap_or(""))?;
        if x.flat {
            return fail("convolves a flattened tensor");
        }
        let w_name = input(1).ok_or_else(|| ImportError("no weights".into()))?;
        let dims = self
            .consts
            .get(w_name)
            .map(|c| c.dims.clone())
            .or_else(|| self.qconsts.get(w_name).map(|q| q.q.dims.clone()))
            .ok_or_else(|| ImportError(format!("weights {w_name} are not a constant")))?;
        let [o, ig, kh, kw] = dims[..] else {
            return fail(format!("weights of dims {dims:?} (2-D convolutions only)"));
        };
        let (o, ig, kh, kw) = (
            size(o as i64, "filters")?,
            size(ig as i64, "filter depth")?,
            size(kh as i64, "kernel")?,
            size(kw as i64, "kernel")?,
        );
        let group = size(attr_i(n, "group", 1), "groups")?;
        if ig * group != x.shape.c || o % group != 0 {
            return fail(format!(
                "{o} filters of depth {ig} in {group} groups for {} channels",
                x.shape.c
            ));
        }
        let pair = |name: &str| -> Result<[usize; 2], ImportError> {
            match attr_ints(n, name).as_deref() {
                None => Ok([1, 1]),
                Some([a, b]) => Ok([size(*a, name)?, size(*b, name)?]),
                Some(v) => fail(format!("{name} {v:?}")),
            }
        };
        let [sh, sw] = pair("strides")?;
        let [dh, dw] = pair("dilations")?;
        if let Some(k) = attr_ints(n, "kernel_shape") {
            if k != [kh as i64, kw as i64] {
                return fail(format!("kernel_shape {k:?} for weights {dims:?}"));
            }
        }
        let padding = self.padding(n)?;
        let depthwise = group == x.shape.c && group > 1;
        let config = if depthwise {
            Conv2dConfig::depthwise(x.shape, o / group, kh, kw)
        } else {
            Conv2dConfig::new(x.shape, o, kh, kw).groups(group)
        }
        .stride(sh, sw)
        .dilation(dh, dw)
        .padding(padding);
        let len = o * ig * kh * kw;
        // OIHW to OHWI (HWO for depthwise).
        let reorder = |w: &[f32]| -> Vec<f32> { reorder_filter(w, [o, ig, kh, kw], depthwise) };
        let ty = self.out_ty(&x, out)?;
        let (weights, fused_out, act) = match (self.weights(w_name, len, o)?, x.ty) {
            (WeightsIn::F32(w), TensorType::F32) => {
                let Bias::F32(mut b) = self.bias(input(2), o, None)? else {
                    return fail("bias type");
                };
                let mut w = w;
                let mut after = out.to_string();
                // A batch normalisation alone after it: folded.
                if let Some(j) = self.sole(out, "BatchNormalization") {
                    self.fold_batch_norm(j, &mut w, &mut b, o)?;
                    self.skip[j] = true;
                    after = self.node(j).output.first().cloned().unwrap_or_default();
                }
                let (act, fused) = self.fused_activation(0, &after, ty)?;
                (
                    Weights::F32 {
                        filter: reorder(&w),
                        bias: b,
                    },
                    fused,
                    act,
                )
            }
            (WeightsIn::I8(w, scales), TensorType::I8(qi)) => {
                let TensorType::I8(qo) = ty else {
                    return fail("mixes float and int8 tensors");
                };
                let Bias::I32(b) = self.bias(input(2), o, Some((qi.scale, &scales)))? else {
                    return fail("bias type");
                };
                let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                let filter: Vec<i8> = reorder(&wf).iter().map(|&v| v as i8).collect();
                (
                    Weights::i8_from_scales(filter, b, &scales, qi, qo)?,
                    out.to_string(),
                    Activation::None,
                )
            }
            _ => return fail("mixes float and int8 tensors"),
        };
        let id = self.builder.conv2d(name, x.id, config, act, weights, ty)?;
        let shape = self.builder.shape(id)?;
        let v = Val {
            id,
            shape,
            ty,
            flat: false,
        };
        if fused_out != out {
            self.vals.insert(fused_out, v);
        }
        Ok(v)
    }

    /// Folds the `BatchNormalization` node `j` into float filters `w`
    /// (OIHW) and bias `b` of `o` channels.
    fn fold_batch_norm(
        &self,
        j: usize,
        w: &mut [f32],
        b: &mut [f32],
        o: usize,
    ) -> Result<(), ImportError> {
        let node = self.node(j);
        let part = |i: usize| -> Result<Vec<f32>, ImportError> {
            let name = node.input.get(i).map_or("", String::as_str);
            let v = self.constant(name)?.data.reals();
            if v.len() != o {
                return fail(format!(
                    "batch normalisation {name}: {} values for {o} channels",
                    v.len()
                ));
            }
            Ok(v)
        };
        let (gamma, beta, mean, var) = (part(1)?, part(2)?, part(3)?, part(4)?);
        let eps = attr_f(node, "epsilon", 1e-5);
        let per = w.len() / o;
        for c in 0..o {
            let k = gamma[c] / (var[c] + eps).sqrt();
            for v in &mut w[c * per..(c + 1) * per] {
                *v *= k;
            }
            b[c] = (b[c] - mean[c]) * k + beta[c];
        }
        Ok(())
    }

    /// The padding of a `Conv` or pool: `pads` as `[top, left, bottom,
    /// right]`, or `auto_pad`.
    fn padding(&self, n: &pb::NodeProto) -> Result<Padding, ImportError> {
        match attr_s(n, "auto_pad").as_str() {
            "" | "NOTSET" => match attr_ints(n, "pads").as_deref() {
                None => Ok(Padding::Valid),
                Some([t, l, b, r]) => Ok(Padding::Explicit {
                    top: cells(*t)?,
                    bottom: cells(*b)?,
                    left: cells(*l)?,
                    right: cells(*r)?,
                }),
                Some(v) => fail(format!("pads {v:?}")),
            },
            "VALID" => Ok(Padding::Valid),
            "SAME_UPPER" => Ok(Padding::Same),
            other => fail(format!("auto_pad {other} is not read")),
        }
    }

    fn pool(&mut self, n: &pb::NodeProto, name: &str, out: &str) -> Result<Val, ImportError> {
        let x = self.val(n.input.first().map_or("", String::as_str))?;
        if x.flat {
            return fail("pools a flattened tensor");
        }
        let window = match attr_ints(n, "kernel_shape").as_deref() {
            Some([a, b]) => [size(*a, "window")?, size(*b, "window")?],
            v => return fail(format!("kernel_shape {v:?}")),
        };
        let stride = match attr_ints(n, "strides").as_deref() {
            None => [1, 1],
            Some([a, b]) => [size(*a, "stride")?, size(*b, "stride")?],
            Some(v) => return fail(format!("strides {v:?}")),
        };
        if attr_i(n, "ceil_mode", 0) != 0 {
            return fail("ceil_mode is not read");
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return fail("dilated pools are not read");
        }
        let padding = self.padding(n)?;
        let padded = !matches!(
            padding,
            Padding::Valid
                | Padding::Explicit {
                    top: 0,
                    bottom: 0,
                    left: 0,
                    right: 0
                }
        );
        let max = n.op_type() == "MaxPool";
        if !max && padded && attr_i(n, "count_include_pad", 0) != 0 {
            return fail("count_include_pad over padding is not read (padding never counts here)");
        }
        let id = if max {
            self.builder.max_pool(name, x.id, window, stride, padding)?
        } else {
            self.builder.avg_pool(name, x.id, window, stride, padding)?
        };
        let shape = self.builder.shape(id)?;
        let v = Val { id, shape, ..x };
        self.requantized(v, &format!("{name}_requantized"), out)
    }

    /// `Gemm` (`A * B' + C`) or `MatMul` (with a later `Add` of a constant
    /// as its bias).
    fn dense(&mut self, k: usize, name: &str, out: &str) -> Result<Val, ImportError> {
        let n = self.node(k);
        let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty()).map(String::as_str);
        let x = self.val(input(0).unwrap_or(""))?;
        let w_name = input(1).ok_or_else(|| ImportError("no weights".into()))?;
        let gemm = n.op_type() == "Gemm";
        if gemm
            && (attr_f(n, "alpha", 1.0) != 1.0
                || attr_f(n, "beta", 1.0) != 1.0
                || attr_i(n, "transA", 0) != 0)
        {
            return fail("alpha, beta and transA other than 1, 1 and 0 are not read");
        }
        let trans_b = gemm && attr_i(n, "transB", 0) != 0;
        let dims = self
            .consts
            .get(w_name)
            .map(|c| c.dims.clone())
            .or_else(|| self.qconsts.get(w_name).map(|q| q.q.dims.clone()))
            .ok_or_else(|| ImportError(format!("weights {w_name} are not a constant")))?;
        let [a, b] = dims[..] else {
            return fail(format!("weights of dims {dims:?}"));
        };
        let (n_out, n_in) = if trans_b { (a, b) } else { (b, a) };
        let (n_out, n_in) = (size(n_out as i64, "outputs")?, size(n_in as i64, "inputs")?);
        if n_in != x.shape.len() {
            return fail(format!("{n_in} inputs for a tensor of {}", x.shape.len()));
        }
        // The blob's input order: a flattened image's columns move from
        // ONNX's CHW order to HWC.
        let s = x.shape;
        let column = |j: usize| -> usize {
            if s.h * s.w > 1 {
                let (cell, ch) = (j / s.c, j % s.c);
                ch * s.h * s.w + cell
            } else {
                j
            }
        };
        let arrange = |w: &[f32]| -> Vec<f32> {
            let mut out = vec![0.0; n_out * n_in];
            for o in 0..n_out {
                for j in 0..n_in {
                    let src = column(j);
                    out[o * n_in + j] = if trans_b {
                        w[o * n_in + src]
                    } else {
                        w[src * n_out + o]
                    };
                }
            }
            out
        };
        let ty = self.out_ty(&x, out)?;
        // MatMul's bias: an Add of a constant alone after it.
        let mut bias_name = if gemm {
            input(2).map(str::to_string)
        } else {
            None
        };
        let mut after = out.to_string();
        if !gemm {
            if let Some(j) = self.sole(out, "Add") {
                let node = self.node(j);
                if let Some(c) = node
                    .input
                    .iter()
                    .find(|i| i.as_str() != out && self.consts.contains_key(i.as_str()))
                {
                    bias_name = Some(c.clone());
                    self.skip[j] = true;
                    after = node.output.first().cloned().unwrap_or_default();
                }
            }
        }
        let (weights, act, fused) = match (self.weights(w_name, n_out * n_in, n_out)?, x.ty) {
            (WeightsIn::F32(w), TensorType::F32) => {
                let Bias::F32(b) = self.bias(bias_name.as_deref(), n_out, None)? else {
                    return fail("bias type");
                };
                let (act, fused) = self.fused_activation(k, &after, ty)?;
                (
                    Weights::F32 {
                        filter: arrange(&w),
                        bias: b,
                    },
                    act,
                    fused,
                )
            }
            (WeightsIn::I8(w, _), TensorType::I8(qi)) => {
                let TensorType::I8(qo) = ty else {
                    return fail("mixes float and int8 tensors");
                };
                // Gemm's weights [N, K] are quantized per row; MatMul's
                // [K, N] per column: either way per output.
                let q = &self.qconsts[w_name];
                let scales = match q.scales.len() {
                    1 => vec![q.scales[0]; n_out],
                    m if m == n_out => q.scales.clone(),
                    m => return fail(format!("{m} weight scales for {n_out} outputs")),
                };
                let Bias::I32(b) =
                    self.bias(bias_name.as_deref(), n_out, Some((qi.scale, &scales)))?
                else {
                    return fail("bias type");
                };
                let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                let filter: Vec<i8> = arrange(&wf).iter().map(|&v| v as i8).collect();
                (
                    Weights::i8_from_scales(filter, b, &scales, qi, qo)?,
                    Activation::None,
                    after,
                )
            }
            _ => return fail("mixes float and int8 tensors"),
        };
        let id = self.builder.dense(name, x.id, n_out, act, weights, ty)?;
        let v = Val {
            id,
            shape: Shape::new(1, 1, n_out),
            ty,
            flat: true,
        };
        if fused != out {
            self.vals.insert(fused, v);
        }
        Ok(v)
    }
}

/// Weights as read: dims, values (and int8's scales per output).
enum WeightsIn {
    F32(Vec<f32>),
    I8(Vec<i8>, Vec<f32>),
}

/// A bias as a layer takes it.
enum Bias {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

/// OIHW filters in the blob's order: OHWI, or HWO for a depthwise
/// convolution.
fn reorder_filter<T: Copy + Default>(
    w: &[T],
    [o, ig, kh, kw]: [usize; 4],
    depthwise: bool,
) -> Vec<T> {
    let mut out = vec![T::default(); w.len()];
    for oc in 0..o {
        for i in 0..ig {
            for y in 0..kh {
                for x in 0..kw {
                    let src = ((oc * ig + i) * kh + y) * kw + x;
                    let dst = if depthwise {
                        (y * kw + x) * o + oc
                    } else {
                        ((oc * kh + y) * kw + x) * ig + i
                    };
                    out[dst] = w[src];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::tensor_shape_proto::{dimension::Value as Dim, Dimension};

    fn info(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
        pb::ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: Some(1),
                    shape: Some(pb::TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| Dimension {
                                value: Some(Dim::DimValue(d)),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn floats(name: &str, dims: &[i64], n: usize) -> pb::TensorProto {
        pb::TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(1),
            float_data: vec![0.25; n],
            ..Default::default()
        }
    }

    fn node(op: &str, ins: &[&str], out: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
        pb::NodeProto {
            op_type: Some(op.into()),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            attribute: attrs,
            ..Default::default()
        }
    }

    /// A model of `nodes` from `x` (NCHW `dims`) to `y`, opset `opset`.
    fn model(
        opset: i64,
        dims: &[i64],
        nodes: Vec<pb::NodeProto>,
        inits: Vec<pb::TensorProto>,
    ) -> Vec<u8> {
        pb::ModelProto {
            ir_version: Some(8),
            opset_import: vec![pb::OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(pb::GraphProto {
                node: nodes,
                initializer: inits,
                input: vec![info("x", dims)],
                output: vec![info("y", &[])],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn error(bytes: &[u8]) -> String {
        onnx(bytes, "t").unwrap_err().to_string()
    }

    #[test]
    fn a_convolution_and_flatten_import() {
        let m = model(
            17,
            &[1, 2, 4, 4],
            vec![
                node("Conv", &["x", "w"], "c", vec![]),
                node("Relu", &["c"], "r", vec![]),
                node("Flatten", &["r"], "y", vec![]),
            ],
            vec![floats("w", &[3, 2, 3, 3], 54)],
        );
        let blob = crate::model::writer::AlignedBytes::from(onnx(&m, "t").unwrap());
        let model = crate::model::Model::parse(blob.as_bytes()).unwrap();
        // The ReLU is the convolution's.
        assert_eq!(model.op_count(), 1);
        assert_eq!(model.op(0).activation, Activation::Relu);
    }

    #[test]
    fn bad_models_get_specific_errors() {
        let relu = || vec![node("Relu", &["x"], "y", vec![])];
        let e = error(&model(99, &[1, 2, 4, 4], relu(), vec![]));
        assert!(e.contains("opset 99"), "{e}");
        for dims in [
            &[1, 2, 1 << 20, 1 << 20][..],
            &[1, -2, 4, 4],
            &[3, 2, 4, 4],
            &[1, 2, 3, 4, 5],
        ] {
            let e = error(&model(17, dims, relu(), vec![]));
            assert!(e.contains("model input x"), "{dims:?}: {e}");
        }
        let e = error(&model(
            17,
            &[1, 2, 4, 4],
            vec![node("Tanh", &["x"], "y", vec![])],
            vec![],
        ));
        assert_eq!(e, "op 0 Tanh is not supported");
        let e = error(&model(
            17,
            &[1, 2, 4, 4],
            vec![node("Relu", &["z"], "y", vec![])],
            vec![],
        ));
        assert!(e.contains("z is read before an op makes it"), "{e}");
        // Weights of the wrong depth, of the wrong rank, of too few values.
        let conv = |w| {
            error(&model(
                17,
                &[1, 2, 4, 4],
                vec![node("Conv", &["x", "w"], "y", vec![])],
                vec![w],
            ))
        };
        for w in [floats("w", &[3, 5, 3, 3], 135), floats("w", &[3, 2, 3], 18)] {
            let e = conv(w);
            assert!(e.starts_with("op 0 Conv"), "{e}");
        }
        let e = conv(floats("w", &[3, 2, 3, 3], 5));
        assert_eq!(e, "tensor w: 5 values for dims [3, 2, 3, 3]");
        // External data is not read.
        let mut w = floats("w", &[3, 2, 3, 3], 54);
        w.data_location = Some(1);
        let e = error(&model(
            17,
            &[1, 2, 4, 4],
            vec![node("Conv", &["x", "w"], "y", vec![])],
            vec![w],
        ));
        assert!(e.contains("outside the file"), "{e}");
        // Absurd dims on a constant.
        let w = floats("w", &[1 << 40, 2, 3, 3], 54);
        let e = error(&model(
            17,
            &[1, 2, 4, 4],
            vec![node("Conv", &["x", "w"], "y", vec![])],
            vec![w],
        ));
        assert!(e.contains("dims"), "{e}");
    }
}
