#!/usr/bin/env python3
"""Generate int8 TFLite reference test vectors for picocnn.

For every case this script

  1. builds a tiny Keras model containing exactly one op (optionally with a
     fused activation), with explicitly set, seeded random weights/biases;
  2. full-integer quantizes it with the TFLiteConverter (int8 in/out,
     TFLITE_BUILTINS_INT8, representative dataset = seeded uniform noise in a
     per-case range so that scales and zero points differ between cases);
  3. checks that the converted model contains exactly the expected operator
     (fails loudly on any extra QUANTIZE/DEQUANTIZE/... op) and that the
     operator parameters stored in the flatbuffer (stride, padding, dilation,
     fused activation, depth multiplier, beta, axis) are the intended ones;
  4. runs it with the TFLite *reference* kernels
     (OpResolverType.BUILTIN_REF) on seeded random int8 inputs covering the
     full range -128..127, and also with the optimized kernels
     (BUILTIN_WITHOUT_DEFAULT_DELEGATES) to record whether both agree;
  5. writes tests/vectors/tflite/<name>.json (schema: see README.md there),
     plus index.txt and README.md.

The standalone int8->int8 QUANTIZE ("requantize") cases cannot be produced by
the converter, so their one-op flatbuffer is assembled directly with the
TFLite schema object API (tensorflow.lite.python.schema_py_generated).

Usage:  python tools/gen_tflite_vectors.py [--out DIR] [--save-models DIR]
Deterministic: two runs produce byte-identical JSON.
"""

import argparse
import contextlib
import io
import json
import math
import os
import sys
import warnings
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import flatbuffers  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema_fb  # noqa: E402

tf.get_logger().setLevel("ERROR")
try:  # silence absl "Saved artifact" chatter where possible
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
except Exception:  # pragma: no cover
    pass

K = tf.keras
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "vectors", "tflite")

# Budget: input(s) + output + weights (+ int32 bias) bytes per case.
MAX_CASE_BYTES = 6 * 1024
N_CALIBRATION = 64

ACT_NAMES = {
    schema_fb.ActivationFunctionType.NONE: "NONE",
    schema_fb.ActivationFunctionType.RELU: "RELU",
    schema_fb.ActivationFunctionType.RELU_N1_TO_1: "RELU_N1_TO_1",
    schema_fb.ActivationFunctionType.RELU6: "RELU6",
    schema_fb.ActivationFunctionType.TANH: "TANH",
    schema_fb.ActivationFunctionType.SIGN_BIT: "SIGN_BIT",
}
PAD_NAMES = {schema_fb.Padding.SAME: "SAME", schema_fb.Padding.VALID: "VALID"}
BUILTIN_NAMES = {
    v: k for k, v in vars(schema_fb.BuiltinOperator).items() if not k.startswith("_")
}
TFLITE_OP = {
    "conv2d": "CONV_2D",
    "depthwise_conv2d": "DEPTHWISE_CONV_2D",
    "fully_connected": "FULLY_CONNECTED",
    "add": "ADD",
    "concat": "CONCATENATION",
    "max_pool": "MAX_POOL_2D",
    "avg_pool": "AVERAGE_POOL_2D",
    "softmax": "SOFTMAX",
    "requantize": "QUANTIZE",
    "relu": "RELU",
    "relu6": "RELU6",
}


class GenError(RuntimeError):
    pass


def check(cond, msg):
    if not cond:
        raise GenError(msg)


def f32(x):
    """Python float holding the exact float32 value of x."""
    return float(np.float32(x))


def case_seed(name, salt):
    return [zlib.crc32(name.encode("utf-8")), salt]


# --------------------------------------------------------------------------
# Case definitions
# --------------------------------------------------------------------------
# Each case: name, op, inputs [(name, shape-without-batch, (lo, hi))],
# build(inputs, rng) -> output tensor (weights set inside), expect {params}.


def conv_weights(rng, kh, kw, cin, cout, gain=1.0, bias_mag=0.5):
    """Random conv kernel (KH, KW, I, O) with per-output-channel gains."""
    std = gain / math.sqrt(kh * kw * cin)
    k = rng.normal(0.0, std, size=(kh, kw, cin, cout))
    k *= rng.uniform(0.35, 1.6, size=(1, 1, 1, cout))  # vary per-channel scales
    b = rng.uniform(-bias_mag, bias_mag, size=(cout,))
    return k.astype(np.float32), b.astype(np.float32)


def make_conv(filters, kernel, strides, padding, dilation, activation, gain, bias_mag):
    def build(ins, rng):
        (x,) = ins
        layer = K.layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding=padding.lower(),
            dilation_rate=dilation,
            use_bias=True,
        )
        y = layer(x)
        cin = x.shape[-1]
        k, b = conv_weights(rng, kernel, kernel, cin, filters, gain, bias_mag)
        layer.set_weights([k, b])
        if activation == "RELU":
            y = K.layers.ReLU()(y)
        elif activation == "RELU6":
            y = K.layers.ReLU(max_value=6.0)(y)
        return y

    return build


def make_depthwise(kernel, strides, padding, mult, activation, gain, bias_mag):
    def build(ins, rng):
        (x,) = ins
        layer = K.layers.DepthwiseConv2D(
            kernel, strides=strides, padding=padding.lower(), depth_multiplier=mult
        )
        y = layer(x)
        c = x.shape[-1]
        std = gain / math.sqrt(kernel * kernel)
        k = rng.normal(0.0, std, size=(kernel, kernel, c, mult))
        k *= rng.uniform(0.35, 1.6, size=(1, 1, c, mult))
        b = rng.uniform(-bias_mag, bias_mag, size=(c * mult,))
        layer.set_weights([k.astype(np.float32), b.astype(np.float32)])
        if activation == "RELU":
            y = K.layers.ReLU()(y)
        elif activation == "RELU6":
            y = K.layers.ReLU(max_value=6.0)(y)
        return y

    return build


def make_dense(units, activation, gain, bias_mag):
    def build(ins, rng):
        (x,) = ins
        layer = K.layers.Dense(units)
        y = layer(x)
        n_in = x.shape[-1]
        k = rng.normal(0.0, gain / math.sqrt(n_in), size=(n_in, units))
        k *= rng.uniform(0.35, 1.6, size=(1, units))
        b = rng.uniform(-bias_mag, bias_mag, size=(units,))
        layer.set_weights([k.astype(np.float32), b.astype(np.float32)])
        if activation == "RELU":
            y = K.layers.ReLU()(y)
        return y

    return build


def make_add(activation):
    def build(ins, rng):
        y = K.layers.Add()(list(ins))
        if activation == "RELU":
            y = K.layers.ReLU()(y)
        return y

    return build


def make_concat():
    def build(ins, rng):
        return K.layers.Concatenate(axis=-1)(list(ins))

    return build


def make_pool(kind, size, strides, padding):
    def build(ins, rng):
        (x,) = ins
        cls = K.layers.MaxPooling2D if kind == "max" else K.layers.AveragePooling2D
        return cls(pool_size=size, strides=strides, padding=padding.lower())(x)

    return build


def make_softmax():
    def build(ins, rng):
        (x,) = ins
        return K.layers.Softmax(axis=-1)(x)

    return build


def make_relu(max_value):
    def build(ins, rng):
        (x,) = ins
        return K.layers.ReLU(max_value=max_value)(x)

    return build


def softmax_rows_input(rng, shape):
    """Rows with different spreads; overall still covers -128..127."""
    rows, depth = shape[-2], shape[-1]
    out = np.zeros(shape, dtype=np.int64).reshape(rows, depth)
    spreads = [(-128, 127), (-20, 20), (90, 127), (-128, -100)]
    for r in range(rows):
        lo, hi = spreads[r % len(spreads)]
        out[r] = rng.integers(lo, hi + 1, size=depth)
    out[0, 0], out[0, 1] = -128, 127
    return out.reshape(shape)


def softmax_wide_input(rng, shape):
    """One -128 and one 127 entry; the rest close to the max so that many
    classes get a non-negligible probability despite the wide input scale."""
    out = rng.integers(96, 128, size=shape)
    flat = out.reshape(-1)
    flat[0], flat[1] = -128, 127
    return out


CASES = [
    dict(
        name="conv3x3_same_s1", op="conv2d",
        inputs=[("x", (9, 9, 3), (-1.0, 2.0))],
        build=make_conv(5, 3, 1, "SAME", 1, "NONE", 1.0, 0.6),
        expect=dict(stride=[1, 1], dilation=[1, 1], padding="SAME", activation="NONE"),
    ),
    dict(
        name="conv3x3_valid_s2_relu", op="conv2d",
        inputs=[("x", (11, 11, 4), (-3.0, 0.5))],
        build=make_conv(6, 3, 2, "VALID", 1, "RELU", 1.0, 1.0),
        expect=dict(stride=[2, 2], dilation=[1, 1], padding="VALID", activation="RELU"),
    ),
    dict(
        name="conv5x5_same_s2_relu6", op="conv2d",
        inputs=[("x", (12, 12, 2), (-2.0, 5.0))],
        build=make_conv(4, 5, 2, "SAME", 1, "RELU6", 6.0, 1.5),
        expect=dict(stride=[2, 2], dilation=[1, 1], padding="SAME", activation="RELU6"),
    ),
    dict(
        name="conv5x5_valid_lenet", op="conv2d",
        inputs=[("x", (12, 12, 6), (0.0, 1.0))],
        build=make_conv(8, 5, 1, "VALID", 1, "RELU", 1.5, 0.3),
        expect=dict(stride=[1, 1], dilation=[1, 1], padding="VALID", activation="RELU"),
    ),
    dict(
        name="conv3x3_dilation2", op="conv2d",
        inputs=[("x", (10, 10, 3), (-0.5, 1.5))],
        build=make_conv(4, 3, 1, "SAME", 2, "NONE", 1.0, 0.4),
        expect=dict(stride=[1, 1], dilation=[2, 2], padding="SAME", activation="NONE"),
    ),
    dict(
        name="conv1x1", op="conv2d",
        inputs=[("x", (8, 8, 16), (-4.0, 4.0))],
        build=make_conv(12, 1, 1, "VALID", 1, "RELU", 1.0, 2.0),
        expect=dict(stride=[1, 1], dilation=[1, 1], padding="VALID", activation="RELU"),
    ),
    dict(
        name="depthwise3x3_same", op="depthwise_conv2d",
        inputs=[("x", (9, 9, 6), (-1.5, 1.0))],
        build=make_depthwise(3, 1, "SAME", 1, "NONE", 1.0, 0.5),
        expect=dict(stride=[1, 1], dilation=[1, 1], padding="SAME", activation="NONE",
                    depth_multiplier=1),
    ),
    dict(
        name="depthwise3x3_s2_mult2", op="depthwise_conv2d",
        inputs=[("x", (11, 11, 4), (-0.2, 3.0))],
        build=make_depthwise(3, 2, "VALID", 2, "RELU", 1.0, 0.8),
        expect=dict(stride=[2, 2], dilation=[1, 1], padding="VALID", activation="RELU",
                    depth_multiplier=2),
    ),
    dict(
        name="add_relu", op="add",
        inputs=[("a", (6, 6, 8), (-1.0, 1.0)), ("b", (6, 6, 8), (0.0, 4.0))],
        build=make_add("RELU"),
        expect=dict(activation="RELU"),
    ),
    dict(
        name="add_plain", op="add",
        inputs=[("a", (5, 5, 6), (-2.5, 0.7)), ("b", (5, 5, 6), (-0.3, 6.0))],
        build=make_add("NONE"),
        expect=dict(activation="NONE"),
    ),
    dict(
        name="concat3", op="concat",
        inputs=[("a", (5, 5, 3), (-1.0, 1.0)), ("b", (5, 5, 5), (0.0, 4.0)),
                ("c", (5, 5, 2), (-3.0, 2.0))],
        build=make_concat(),
        expect=dict(axis=3, activation="NONE"),
    ),
    dict(
        name="maxpool2x2", op="max_pool",
        inputs=[("x", (10, 10, 4), (-2.0, 3.0))],
        build=make_pool("max", 2, 2, "VALID"),
        expect=dict(filter=[2, 2], stride=[2, 2], padding="VALID", activation="NONE"),
    ),
    dict(
        name="maxpool3x3_s2_same", op="max_pool",
        inputs=[("x", (9, 9, 3), (-0.7, 0.2))],
        build=make_pool("max", 3, 2, "SAME"),
        expect=dict(filter=[3, 3], stride=[2, 2], padding="SAME", activation="NONE"),
    ),
    dict(
        name="avgpool2x2", op="avg_pool",
        inputs=[("x", (10, 10, 4), (-1.0, 5.0))],
        build=make_pool("avg", 2, 2, "VALID"),
        expect=dict(filter=[2, 2], stride=[2, 2], padding="VALID", activation="NONE"),
    ),
    dict(
        name="avgpool3x3_same", op="avg_pool",
        inputs=[("x", (7, 7, 3), (-3.0, 3.0))],
        build=make_pool("avg", 3, 1, "SAME"),
        expect=dict(filter=[3, 3], stride=[1, 1], padding="SAME", activation="NONE"),
    ),
    dict(
        name="global_avgpool_as_avgpool", op="avg_pool",
        inputs=[("x", (6, 6, 8), (0.5, 9.0))],
        build=make_pool("avg", 6, 6, "VALID"),
        expect=dict(filter=[6, 6], stride=[6, 6], padding="VALID", activation="NONE"),
    ),
    dict(
        name="dense", op="fully_connected",
        inputs=[("x", (64,), (-2.0, 1.2))],
        build=make_dense(10, "NONE", 1.0, 0.5),
        expect=dict(activation="NONE"),
    ),
    dict(
        # LeNet's 120->84 would need 10 KiB of weights, over the 6 KB budget;
        # shrunk to 60->42 (2.5 KiB weights).
        name="dense_relu", op="fully_connected",
        inputs=[("x", (60,), (0.0, 2.0))],
        build=make_dense(42, "RELU", 1.0, 0.5),
        expect=dict(activation="RELU"),
    ),
    dict(
        name="dense_per_tensor", op="fully_connected",
        inputs=[("x", (48,), (-1.0, 3.0))],
        build=make_dense(16, "NONE", 1.0, 0.7),
        expect=dict(activation="NONE"),
        per_tensor_dense=True,
    ),
    dict(
        name="softmax", op="softmax",
        inputs=[("x", (4, 10), (-5.0, 5.0))],
        build=make_softmax(),
        expect=dict(beta=1.0),
        test_input=softmax_rows_input,
    ),
    dict(
        name="softmax_wide", op="softmax",
        inputs=[("x", (32,), (-20.0, 20.0))],
        build=make_softmax(),
        expect=dict(beta=1.0),
        test_input=softmax_wide_input,
    ),
    dict(
        name="relu_standalone", op="relu",
        inputs=[("x", (6, 6, 4), (-2.0, 3.0))],
        build=make_relu(None),
        expect=dict(),
    ),
    dict(
        name="relu6_standalone", op="relu6",
        inputs=[("x", (6, 6, 4), (-4.0, 8.0))],
        build=make_relu(6.0),
        expect=dict(),
    ),
    # Standalone int8->int8 QUANTIZE, assembled with the schema object API.
    dict(
        name="requantize", op="requantize",
        inputs=[("x", (6, 6, 4), None)],
        handmade=dict(in_scale=0.0213, in_zp=-17, out_scale=0.0371, out_zp=23),
        expect=dict(),
    ),
    dict(
        name="requantize_up", op="requantize",
        inputs=[("x", (5, 5, 4), None)],
        handmade=dict(in_scale=0.0213, in_zp=5, out_scale=0.0157, out_zp=-9),
        expect=dict(),
    ),
    dict(
        # Effective multiplier exactly 0.25 (2^-6 / 2^-4): double rounding
        # (TFLite default) and TFLITE_SINGLE_ROUNDING disagree on many
        # outputs (x = 4k+1 -> k+1 vs k; negative .5 ties), so this case
        # pins down the rounding mode.
        name="requantize_pot_ties", op="requantize",
        inputs=[("x", (4, 4, 8), None)],
        handmade=dict(in_scale=2.0 ** -6, in_zp=3, out_scale=2.0 ** -4, out_zp=-7),
        expect=dict(),
    ),
]


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------


def convert(case):
    name = case["name"]
    tf.keras.utils.set_random_seed(zlib.crc32(name.encode()) & 0x7FFFFFFF)
    w_rng = np.random.default_rng(case_seed(name, 1))
    r_rng = np.random.default_rng(case_seed(name, 2))

    ins = [K.Input(shape=s, batch_size=1, name=n) for (n, s, _) in case["inputs"]]
    out = case["build"](ins, w_rng)
    model = K.Model(inputs=ins, outputs=out)

    def rep():
        for _ in range(N_CALIBRATION):
            sample = {}
            for (n, s, (lo, hi)) in case["inputs"]:
                sample[n] = r_rng.uniform(lo, hi, size=(1,) + tuple(s)).astype(np.float32)
            # Keyed by input name: unambiguous for multi-input models.
            yield sample

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    if case.get("per_tensor_dense"):
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    with contextlib.redirect_stdout(io.StringIO()):
        return bytes(conv.convert())


def handmade_requantize(case):
    """One-op model: int8 input -> QUANTIZE -> int8 output (new scale/zp)."""
    hm = case["handmade"]
    (in_name, shape, _) = case["inputs"][0]
    shape = [1] + list(shape)

    def qparams(scale, zp):
        q = schema_fb.QuantizationParametersT()
        q.scale = [f32(scale)]
        q.zeroPoint = [int(zp)]
        q.quantizedDimension = 0
        return q

    def tensor(name, buf, q):
        t = schema_fb.TensorT()
        t.shape = list(shape)
        t.type = schema_fb.TensorType.INT8
        t.buffer = buf
        t.name = name
        t.quantization = q
        return t

    m = schema_fb.ModelT()
    m.version = 3
    m.description = "picocnn requantize test"
    oc = schema_fb.OperatorCodeT()
    oc.builtinCode = schema_fb.BuiltinOperator.QUANTIZE
    oc.deprecatedBuiltinCode = schema_fb.BuiltinOperator.QUANTIZE
    oc.version = 2
    m.operatorCodes = [oc]
    m.buffers = [schema_fb.BufferT() for _ in range(3)]
    sg = schema_fb.SubGraphT()
    sg.name = "main"
    sg.tensors = [
        tensor(in_name, 1, qparams(hm["in_scale"], hm["in_zp"])),
        tensor("output", 2, qparams(hm["out_scale"], hm["out_zp"])),
    ]
    op = schema_fb.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0]
    op.outputs = [1]
    op.builtinOptionsType = schema_fb.BuiltinOptions.QuantizeOptions
    op.builtinOptions = schema_fb.QuantizeOptionsT()
    sg.operators = [op]
    sg.inputs = [0]
    sg.outputs = [1]
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# --------------------------------------------------------------------------
# Inspection helpers
# --------------------------------------------------------------------------


def make_interpreter(buf, resolver):
    it = tf.lite.Interpreter(
        model_content=buf, experimental_op_resolver_type=resolver, num_threads=1
    )
    it.allocate_tensors()
    return it


def qparams_of(detail):
    qp = detail["quantization_parameters"]
    return (
        [f32(s) for s in qp["scales"]],
        [int(z) for z in qp["zero_points"]],
        int(qp["quantized_dimension"]),
    )


def per_tensor_q(detail, what):
    scales, zps, _ = qparams_of(detail)
    check(len(scales) == 1 and len(zps) == 1, f"{what}: expected per-tensor quantization")
    check(detail["dtype"] == np.int8, f"{what}: expected int8, got {detail['dtype']}")
    return scales[0], zps[0]


def fb_params(case, model_t, fb_op):
    """Decode the op's builtin options from the flatbuffer."""
    opname = case["op"]
    o = fb_op.builtinOptions
    p = {}
    if opname in ("conv2d", "depthwise_conv2d"):
        p["stride"] = [o.strideH, o.strideW]
        p["dilation"] = [o.dilationHFactor, o.dilationWFactor]
        p["padding"] = PAD_NAMES[o.padding]
        p["activation"] = ACT_NAMES[o.fusedActivationFunction]
        if opname == "depthwise_conv2d":
            p["depth_multiplier"] = o.depthMultiplier
    elif opname == "fully_connected":
        p["activation"] = ACT_NAMES[o.fusedActivationFunction]
        check(o.weightsFormat == schema_fb.FullyConnectedOptionsWeightsFormat.DEFAULT,
              "FC weights format is not DEFAULT")
        check(not o.keepNumDims, "FC keep_num_dims set")
    elif opname == "add":
        p["activation"] = ACT_NAMES[o.fusedActivationFunction]
    elif opname == "concat":
        p["axis"] = o.axis
        p["activation"] = ACT_NAMES[o.fusedActivationFunction]
    elif opname in ("max_pool", "avg_pool"):
        p["filter"] = [o.filterHeight, o.filterWidth]
        p["stride"] = [o.strideH, o.strideW]
        p["padding"] = PAD_NAMES[o.padding]
        p["activation"] = ACT_NAMES[o.fusedActivationFunction]
    elif opname == "softmax":
        p["beta"] = f32(o.beta)
    return p


def int8_list(a):
    a = np.asarray(a)
    check(a.dtype == np.int8, f"expected int8 data, got {a.dtype}")
    return [int(v) for v in a.reshape(-1)]


def run(it, in_details_by_index, inputs):
    for idx, data in inputs.items():
        d = in_details_by_index[idx]
        it.set_tensor(d["index"], data.astype(np.int8).reshape(d["shape"]))
    it.invoke()
    (od,) = it.get_output_details()
    return it.get_tensor(od["index"]).copy()


# --------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------


def generate(case, save_models=None):
    name, opname = case["name"], case["op"]
    if "handmade" in case:
        buf = handmade_requantize(case)
    else:
        buf = convert(case)
    if save_models:
        with open(os.path.join(save_models, name + ".tflite"), "wb") as f:
            f.write(buf)

    ref = make_interpreter(buf, tf.lite.experimental.OpResolverType.BUILTIN_REF)
    ops = ref._get_ops_details()
    op_names = [o["op_name"] for o in ops]
    check(op_names == [TFLITE_OP[opname]],
          f"{name}: converted model has ops {op_names}, expected exactly "
          f"[{TFLITE_OP[opname]}]")

    # Flatbuffer view: operator code and builtin options.
    model_t = schema_fb.ModelT.InitFromObj(schema_fb.Model.GetRootAsModel(buf, 0))
    check(len(model_t.subgraphs) == 1, f"{name}: expected one subgraph")
    sg = model_t.subgraphs[0]
    check(len(sg.operators) == 1, f"{name}: expected one operator in flatbuffer")
    fb_op = sg.operators[0]
    code = model_t.operatorCodes[fb_op.opcodeIndex]
    code_id = max(code.builtinCode, code.deprecatedBuiltinCode)
    check(BUILTIN_NAMES[code_id] == TFLITE_OP[opname],
          f"{name}: flatbuffer op {BUILTIN_NAMES[code_id]}")
    params = fb_params(case, model_t, fb_op)
    if opname == "concat" and params["axis"] < 0:
        rank = len(sg.tensors[fb_op.outputs[0]].shape)
        params["axis"] += rank
    for k, v in case["expect"].items():
        check(params.get(k) == v,
              f"{name}: flatbuffer param {k}={params.get(k)!r}, intended {v!r}")

    details = {d["index"]: d for d in ref.get_tensor_details()}
    in_details = {d["index"]: d for d in ref.get_input_details()}
    (out_detail,) = ref.get_output_details()
    op = ops[0]
    op_inputs = [int(i) for i in op["inputs"]]
    check([int(i) for i in op["outputs"]] == [out_detail["index"]],
          f"{name}: op output is not the model output")
    check(list(fb_op.inputs) == op_inputs, f"{name}: interpreter/flatbuffer input mismatch")

    # Activation inputs of the op, in op order; constants are weights/bias.
    act_inputs = [i for i in op_inputs if i in in_details]
    check(len(act_inputs) == len(case["inputs"]),
          f"{name}: op consumes {len(act_inputs)} model inputs, expected "
          f"{len(case['inputs'])}")
    check(sorted(act_inputs) == sorted(in_details),
          f"{name}: model inputs not all consumed by the op")

    # Sanity: each model input's quantized range should match the calibration
    # range of the Keras input with the same name.
    by_name = {n: (s, r) for (n, s, r) in case["inputs"]}
    input_names = {}
    for idx in act_inputs:
        tname = details[idx]["name"]
        matches = [n for n in by_name
                   if tname == n or f"_{n}:" in tname or tname.endswith("_" + n)]
        check(len(matches) == 1, f"{name}: cannot map input tensor {tname!r}")
        input_names[idx] = matches[0]

    # Test inputs: seeded, full int8 range.
    t_rng = np.random.default_rng(case_seed(name, 3))
    test_inputs = {}
    for idx in act_inputs:
        shape = [int(v) for v in in_details[idx]["shape"]]
        if case.get("test_input"):
            data = case["test_input"](t_rng, shape)
        else:
            data = t_rng.integers(-128, 128, size=shape)
            flat = data.reshape(-1)
            flat[0], flat[1] = -128, 127
        check(data.min() == -128 and data.max() == 127, f"{name}: input not full range")
        test_inputs[idx] = data.astype(np.int8)

    ref_out = run(ref, in_details, test_inputs)
    opt = make_interpreter(buf, tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    opt_in = {d["index"]: d for d in opt.get_input_details()}
    check(sorted(opt_in) == sorted(in_details), f"{name}: optimized interpreter inputs differ")
    opt_out = run(opt, opt_in, test_inputs)
    optimized_matches = bool(np.array_equal(ref_out, opt_out))
    n_opt_diff = int((ref_out.astype(np.int32) != opt_out.astype(np.int32)).sum())
    max_opt_diff = int(np.abs(ref_out.astype(np.int32) - opt_out.astype(np.int32)).max())

    # Inputs section.
    inputs_json = []
    total_bytes = 0
    for idx in act_inputs:
        d = details[idx]
        scale, zp = per_tensor_q(d, f"{name} input {d['name']}")
        (lo_hi) = by_name[input_names[idx]][1]
        if lo_hi is not None:
            lo, hi = lo_hi
            qlo, qhi = scale * (-128 - zp), scale * (127 - zp)
            # calibration min/max are nudged to include 0, and may be a bit
            # inside the nominal range; accept generous slack.
            slack = 0.15 * (hi - lo) + scale
            check(abs(qlo - min(lo, 0.0)) <= slack and abs(qhi - max(hi, 0.0)) <= slack
                  or opname == "concat",
                  f"{name}: input {input_names[idx]} quantized range [{qlo}, {qhi}] "
                  f"does not match calibration range [{lo}, {hi}]")
        inputs_json.append(dict(
            shape=[int(v) for v in d["shape"]], scale=scale, zero_point=zp,
            data=int8_list(test_inputs[idx]),
        ))
        total_bytes += int(np.prod(d["shape"]))

    oscale, ozp = per_tensor_q(out_detail, f"{name} output")
    output_json = dict(
        shape=[int(v) for v in out_detail["shape"]], scale=oscale, zero_point=ozp,
        data=int8_list(ref_out),
    )
    total_bytes += int(np.prod(out_detail["shape"]))

    # Weights / bias for conv, depthwise, fully connected.
    consts = [i for i in op_inputs if i not in in_details and i >= 0]
    if opname in ("conv2d", "depthwise_conv2d", "fully_connected"):
        check(len(op_inputs) == 3 and len(consts) == 2 and op_inputs[0] in in_details,
              f"{name}: expected (input, filter, bias) operands, got {op_inputs}")
        fd, bd = details[op_inputs[1]], details[op_inputs[2]]
        check(fd["dtype"] == np.int8, f"{name}: filter not int8")
        check(bd["dtype"] == np.int32, f"{name}: bias not int32")
        fscales, fzps, fqdim = qparams_of(fd)
        bscales, bzps, bqdim = qparams_of(bd)
        fdata = ref.get_tensor(fd["index"])
        bdata = ref.get_tensor(bd["index"])
        # Cross-check against the raw flatbuffer buffers.
        fb_f = np.frombuffer(bytes(model_t.buffers[sg.tensors[op_inputs[1]].buffer].data),
                             dtype=np.int8)
        fb_b = np.frombuffer(bytes(model_t.buffers[sg.tensors[op_inputs[2]].buffer].data),
                             dtype="<i4")
        check(np.array_equal(fb_f, fdata.reshape(-1)), f"{name}: filter data mismatch")
        check(np.array_equal(fb_b, bdata.reshape(-1)), f"{name}: bias data mismatch")
        check(all(z == 0 for z in fzps), f"{name}: filter zero points not 0: {fzps}")
        check(all(z == 0 for z in bzps), f"{name}: bias zero points not 0")
        fshape = [int(v) for v in fd["shape"]]
        n_out = fshape[3] if opname == "depthwise_conv2d" else fshape[0]
        if len(fscales) > 1:
            want_dim = 3 if opname == "depthwise_conv2d" else 0
            check(fqdim == want_dim and len(fscales) == n_out,
                  f"{name}: per-channel filter quantization on dim {fqdim}")
        check(len(bscales) == len(fscales), f"{name}: bias/filter scale count differ")
        check(len(bdata.reshape(-1)) == n_out, f"{name}: bias length")
        params["filter"] = dict(shape=fshape, scales=fscales, zero_points=fzps,
                                data=int8_list(fdata))
        params["bias"] = dict(scales=bscales,
                              data=[int(v) for v in bdata.reshape(-1)])
        if opname == "fully_connected":
            params["per_channel"] = len(fscales) > 1
            if case.get("per_tensor_dense"):
                check(len(fscales) == 1, f"{name}: expected per-tensor weights")
        else:
            check(len(fscales) == n_out, f"{name}: expected per-channel conv weights")
        total_bytes += fdata.size + 4 * bdata.size
    else:
        check(not consts, f"{name}: unexpected constant operands {consts}")

    if opname == "softmax":
        check(oscale == f32(1.0 / 256) and ozp == -128,
              f"{name}: softmax output quantization {oscale}, {ozp}")
    if opname in ("max_pool", "avg_pool"):
        (ind,) = inputs_json
        check(ind["scale"] == oscale and ind["zero_point"] == ozp,
              f"{name}: pooling in/out quantization differ")
    if opname in ("requantize", "relu", "relu6"):
        check(params == {}, f"{name}: unexpected params")
        (ind,) = inputs_json
        check((ind["scale"], ind["zero_point"]) != (oscale, ozp),
              f"{name}: in/out quantization identical (trivial case)")

    check(total_bytes <= MAX_CASE_BYTES,
          f"{name}: {total_bytes} bytes exceeds the {MAX_CASE_BYTES} byte budget")

    doc = dict(
        name=name,
        op=opname,
        tflite_version=tf.__version__,
        optimized_matches_reference=optimized_matches,
        inputs=inputs_json,
        output=output_json,
        params=params,
    )
    return doc, total_bytes, (n_opt_diff, max_opt_diff, ref_out.size)


def dump(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


def write_readme(out_dir, summary):
    lines = [
        "# TFLite int8 reference test vectors",
        "",
        "Generated by `tools/gen_tflite_vectors.py` with TensorFlow "
        f"{tf.__version__} (TFLite interpreter, reference kernels "
        "`OpResolverType.BUILTIN_REF`). Do not edit by hand; regenerate with:",
        "",
        "```sh",
        "python3.11 -m venv ~/tfvenv        # any location outside the repo",
        "~/tfvenv/bin/pip install -r tools/requirements.txt",
        "~/tfvenv/bin/python tools/gen_tflite_vectors.py",
        "~/tfvenv/bin/python tools/check_vectors.py   # independent NumPy re-check",
        "```",
        "",
        "Generation is deterministic (fixed seeds, sorted keys): re-running it",
        "must give byte-identical files.",
        "",
        "## Cases",
        "",
        "| case | op | bytes (in+out+weights) | optimized == reference |",
        "| --- | --- | --- | --- |",
    ]
    for name, opname, nbytes, (ndiff, maxdiff, size) in summary:
        match = "yes" if ndiff == 0 else f"no: {ndiff}/{size} elements differ (max abs diff {maxdiff})"
        lines.append(f"| `{name}` | {opname} | {nbytes} | {match} |")
    lines += [
        "",
        "Notes:",
        "",
        "- The expected outputs are those of the *reference* kernels. The last",
        "  column compares them with TFLite's optimized kernels",
        "  (`BUILTIN_WITHOUT_DEFAULT_DELEGATES`, no XNNPACK); where they differ",
        "  the reference result is the one recorded.",
        "- `tools/check_vectors.py` recomputes every case from the JSON alone",
        "  with an independent NumPy model of the reference integer arithmetic",
        "  and must report all cases exact in double-rounding mode.",
        "- `dense_relu` is 60->42 (not LeNet's 120->84, whose 10 KiB of weights",
        "  would exceed the ~6 KB per-case budget).",
        "- `dense_per_tensor` uses per-tensor weight quantization (converter flag",
        "  `_experimental_disable_per_channel_quantization_for_dense_layers`);",
        "  `dense`/`dense_relu` use the default per-channel weights.",
        "- `concat3`: the converter gives all three inputs and the output one",
        "  common scale/zero point (int8 CONCATENATION is a same-scale op).",
        "- `requantize`, `requantize_up`: a standalone int8->int8 QUANTIZE cannot",
        "  be obtained from the converter; the one-op flatbuffer is built with",
        "  the TFLite schema object API (`schema_py_generated`), scales chosen so",
        "  the effective multiplier is < 1 and > 1 respectively;",
        "  `requantize_pot_ties` has an effective multiplier of exactly 0.25",
        "  (multiplier 2^30, shift -1). It exposes TFLite's double rounding:",
        "  SaturatingRoundingDoublingHighMul first rounds x/2 to an integer,",
        "  RoundingDivideByPOT then rounds again (ties away from zero), so",
        "  (x - zp) = 13 -> 3.25 -> 4 and (x - zp) = -58 -> -14.5 -> -15, where",
        "  a TFLITE_SINGLE_ROUNDING build would give 3 and -14 (39 of the 128",
        "  outputs differ between the two modes).",
        "- Fused RELU/RELU6: the converter calibrates the op output *after* the",
        "  activation, so the output zero point is -128 and the activation clamp",
        "  coincides with int8 saturation (act_min = -128, and for RELU6",
        "  act_max = 127 since the scale is 6/255).",
        "- `relu_standalone`, `relu6_standalone`: converter output of",
        "  Input->ReLU; input and output quantization differ (RELU requantizes).",
        "- `softmax` rows have different spreads (full range, narrow, high,",
        "  low) so that saturated and non-saturated rows are both covered.",
        "",
        "## JSON schema",
        "",
        "```",
        '{ "name", "op", "tflite_version", "optimized_matches_reference",',
        '  "inputs": [{"shape", "scale", "zero_point", "data"}],   (op operand order)',
        '  "output": {"shape", "scale", "zero_point", "data"},',
        '  "params": {...} }',
        "```",
        "",
        "All shapes include the batch dimension 1; data is flattened row-major",
        "(NHWC). Scales are float32 values written exactly as JSON doubles.",
        "`params` by op:",
        "",
        "- conv2d: stride [h,w], dilation [h,w], padding SAME|VALID, activation",
        "  NONE|RELU|RELU6, filter {shape [O,KH,KW,I], scales (per output",
        "  channel), zero_points, data}, bias {scales, data (int32)}",
        "- depthwise_conv2d: as conv2d plus depth_multiplier; filter shape",
        "  [1,KH,KW,C*m]",
        "- fully_connected: activation, filter {shape [O,I], ...}, bias,",
        "  per_channel (bool; equals len(filter.scales) > 1)",
        "- add: activation",
        "- concat: axis, activation",
        "- max_pool / avg_pool: filter [h,w], stride [h,w], padding, activation",
        "- softmax: beta",
        "- requantize, relu, relu6: {}",
        "",
    ]
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--save-models", default=None,
                    help="also write the .tflite models to this directory")
    ap.add_argument("--only", nargs="*", default=None, help="case names to generate")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.save_models:
        os.makedirs(args.save_models, exist_ok=True)

    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names)
    summary = []
    for case in CASES:
        if args.only and case["name"] not in args.only:
            continue
        doc, nbytes, optdiff = generate(case, args.save_models)
        with open(os.path.join(args.out, case["name"] + ".json"), "w") as f:
            f.write(dump(doc))
        summary.append((case["name"], case["op"], nbytes, optdiff))
        print(f"{case['name']:28s} {case['op']:18s} {nbytes:5d} B  "
              f"optimized==reference: {doc['optimized_matches_reference']}", flush=True)
    if not args.only:
        with open(os.path.join(args.out, "index.txt"), "w") as f:
            f.write("".join(n + "\n" for n in sorted(names)))
        write_readme(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
