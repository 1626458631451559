//! The weighted layers and pools of an ONNX model: filters reordered to
//! the blob's layout, batch normalisation folded, biases quantized.

use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use super::{attr_f, attr_i, attr_ints, attr_s, cells, pb, size, Data, Importer, Val};
use crate::import::{fail, ImportError};
use crate::model::writer::{TensorType, Weights};
use crate::ops::conv::Conv2dConfig;
use crate::ops::Padding;
use crate::quant::Activation;
use crate::tensor::Shape;

impl Importer<'_> {
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

    pub(super) fn conv(
        &mut self,
        n: &pb::NodeProto,
        name: &str,
        out: &str,
    ) -> Result<Val, ImportError> {
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
                let (act, fused) = self.fused_activation(&after, ty)?;
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

    pub(super) fn pool(
        &mut self,
        n: &pb::NodeProto,
        name: &str,
        out: &str,
    ) -> Result<Val, ImportError> {
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
    pub(super) fn dense(&mut self, k: usize, name: &str, out: &str) -> Result<Val, ImportError> {
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
                let (act, fused) = self.fused_activation(&after, ty)?;
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
