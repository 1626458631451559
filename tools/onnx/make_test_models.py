"""Test models for `picocnn import` of ONNX files: networks written with
`onnx.helper` as PyTorch exports them (NCHW, Conv with bias,
BatchNormalization left unfolded, Flatten then Gemm with `transB`), in
float32 and quantized by onnxruntime's `quantize_static` to QDQ int8
(after its `quant_pre_process`, which folds batch normalisation;
per-channel symmetric weights, int8 activations), written to
tests/models/onnx/:

- `lenet5`: LeNet-5 on 28x28x1 (conv 6 5x5 same, max pool, conv 16 5x5,
  max pool, dense 120, 84, 10, softmax).
- `resnet8`: ResNet-8 as MLPerf Tiny's (32x32x3; conv 16, three residual
  stacks of 16, 32 and 64 channels with batch normalisation and 1x1
  shortcuts where the stride is 2, global average pool, dense 10, softmax).
- `dscnn`: DS-CNN as MLPerf Tiny's keyword spotter (49x10x1; conv 64 10x4
  stride 2, four blocks of depthwise 3x3 and 1x1 convolution with batch
  normalisation and ReLU6 as `Clip`, average pool 25x5, dense 12,
  softmax).

Each model comes as `<name>_f32.onnx` and `<name>_qdq.onnx`, with
`<name>_x.npy` (float32 test inputs, NHWC as picocnn takes them; the
models take them transposed to NCHW) and `<name>_f32_y.npy` /
`<name>_qdq_y.npy`: onnxruntime's outputs (CPU, its default graph
optimizations). Weights are random (He initialisation, seeded); the last
dense layer is scaled so that the outputs differ from input to input.

    target/litert-venv/bin/python tools/onnx/make_test_models.py
"""

import os

import numpy as np

OUT = "tests/models/onnx"
OPSET = 17


class Graph:
    """A network under construction: nodes, initializers, fresh names."""

    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, kind):
        self.n += 1
        return f"{kind}{self.n}"

    def const(self, value, kind="w"):
        from onnx import numpy_helper

        name = self.name(kind)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op, inputs, **attrs):
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, c_in, c_out, k, stride=1, pads=None, group=1):
        kh, kw = (k, k) if isinstance(k, int) else k
        fan_in = c_in // group * kh * kw
        w = self.rng.normal(0, np.sqrt(2 / fan_in), (c_out, c_in // group, kh, kw))
        b = self.rng.uniform(-0.1, 0.1, c_out)
        if pads is None:
            pads = [kh // 2, kw // 2, kh // 2, kw // 2]
        return self.node(
            "Conv",
            [x, self.const(w.astype(np.float32)), self.const(b.astype(np.float32), "b")],
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=pads,
            group=group,
        )

    def bn(self, x, c):
        r = self.rng
        parts = [
            r.uniform(0.5, 1.5, c),
            r.uniform(-0.2, 0.2, c),
            r.uniform(-0.2, 0.2, c),
            r.uniform(0.5, 1.5, c),
        ]
        return self.node(
            "BatchNormalization",
            [x] + [self.const(p.astype(np.float32), "bn") for p in parts],
            epsilon=1e-3,
        )

    def gemm(self, x, n_in, n_out, scale=1.0, bias=None):
        w = self.rng.normal(0, np.sqrt(2 / n_in), (n_out, n_in)) * scale
        b = self.rng.uniform(-0.1, 0.1, n_out) if bias is None else bias
        return self.node(
            "Gemm",
            [x, self.const(w.astype(np.float32)), self.const(np.asarray(b, np.float32), "b")],
            transB=1,
        )

    def model(self, x_shape, y, n_out):
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, n_out])],
            self.inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        return m


def lenet5(g, head):
    x = g.node("Relu", [g.conv("x", 1, 6, 5)])
    x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("Relu", [g.conv(x, 6, 16, 5, pads=[0, 0, 0, 0])])
    x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("Flatten", [x], axis=1)
    x = g.node("Relu", [g.gemm(x, 400, 120)])
    x = g.node("Relu", [g.gemm(x, 120, 84)])
    return g.gemm(x, 84, 10, *head), 10


def resnet8(g, head):
    x = g.node("Relu", [g.bn(g.conv("x", 3, 16, 3), 16)])
    c_in = 16
    for c, stride in [(16, 1), (32, 2), (64, 2)]:
        y = g.node("Relu", [g.bn(g.conv(x, c_in, c, 3, stride), c)])
        y = g.bn(g.conv(y, c, c, 3), c)
        if stride != 1:
            x = g.conv(x, c_in, c, 1, stride, pads=[0, 0, 0, 0])
        x = g.node("Relu", [g.node("Add", [x, y])])
        c_in = c
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    return g.gemm(x, 64, 10, *head), 10


def dscnn(g, head):
    lo, hi = g.const(np.float32(0.0), "lo"), g.const(np.float32(6.0), "hi")
    # Same padding of a 10x4 window, stride 2, on 49x10: 4 above, 5 below.
    x = g.conv("x", 1, 64, (10, 4), 2, pads=[4, 1, 5, 1])
    x = g.node("Relu", [g.bn(x, 64)])
    for _ in range(4):
        x = g.node("Clip", [g.bn(g.conv(x, 64, 64, 3, group=64), 64), lo, hi])
        x = g.node("Clip", [g.bn(g.conv(x, 64, 64, 1, pads=[0, 0, 0, 0]), 64), lo, hi])
    x = g.node("AveragePool", [x], kernel_shape=[25, 5], strides=[25, 5])
    x = g.node("Flatten", [x], axis=1)
    return g.gemm(x, 64, 12, *head), 12


def varied(rng, n, shape):
    """NHWC inputs in [-1, 1] whose mean and contrast differ per input and
    channel."""
    centre = rng.uniform(-0.6, 0.6, (n, 1, 1, shape[-1]))
    contrast = rng.uniform(0.1, 0.4, (n, 1, 1, shape[-1]))
    return np.clip(centre + contrast * rng.uniform(-1, 1, (n, *shape)), -1, 1).astype(np.float32)


def run(model_bytes, x_nhwc):
    import onnxruntime as ort

    s = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x.transpose(2, 0, 1)[None]})[0] for x in x_nhwc])


def build(net, seed, shape, head=(1.0, None)):
    g = Graph(np.random.default_rng(seed))
    y, n_out = net(g, head)
    y = g.node("Softmax", [y], axis=-1)
    h, w, c = shape
    return g.model([1, c, h, w], y, n_out), y


def make(name, net, seed, shape, n):
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    rng = np.random.default_rng(seed + 100)
    samples = varied(rng, 64, shape)
    x = varied(rng, n, shape)
    # The logits of the unscaled head, to centre and spread the real one.
    model, y = build(net, seed, shape)
    logits_model = onnx.helper.make_model(
        onnx.helper.make_graph(
            model.graph.node[:-1],
            "g",
            model.graph.input,
            [onnx.helper.make_tensor_value_info(model.graph.node[-1].input[0], 1, None)],
            model.graph.initializer,
        ),
        opset_imports=model.opset_import,
    )
    logits_model.ir_version = 8
    logits = run(logits_model.SerializeToString(), samples)
    f = 2.0 / max(float(np.std(logits - logits.mean(axis=0))), 1e-6)
    # The same weights (same seed), the head scaled by f, its bias set so
    # that the logits centre on zero.
    model, _ = build(net, seed, shape, (f, None))
    bias_name = model.graph.node[-2].input[2]
    head = [i for i in model.graph.initializer if i.name == bias_name][0]
    b = onnx.numpy_helper.to_array(head)
    new_b = (-f * (logits.mean(axis=0) - b)).astype(np.float32)
    head.CopyFrom(onnx.numpy_helper.from_array(new_b, head.name))
    onnx.checker.check_model(model)
    f32 = model.SerializeToString()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": s.transpose(2, 0, 1)[None]} for s in samples])

        def get_next(self):
            return next(self.items, None)

    src, pre, dst = (f"/tmp/{name}_{k}.onnx" for k in ("f32", "pre", "qdq"))
    with open(src, "wb") as fh:
        fh.write(f32)
    # As onnxruntime advises: shapes inferred, batch normalisation folded.
    quant_pre_process(src, pre, skip_symbolic_shape=True)
    quantize_static(
        pre,
        dst,
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    with open(dst, "rb") as fh:
        qdq = fh.read()
    for kind, data in [("f32", f32), ("qdq", qdq)]:
        with open(os.path.join(OUT, f"{name}_{kind}.onnx"), "wb") as fh:
            fh.write(data)
        y = run(data, x)
        np.save(os.path.join(OUT, f"{name}_{kind}_y.npy"), y)
        print(f"{name}_{kind}: {len(data)} bytes, outputs {y.shape}, argmax {y.argmax(1)}")
    np.save(os.path.join(OUT, f"{name}_x.npy"), x)


def main():
    os.makedirs(OUT, exist_ok=True)
    make("lenet5", lenet5, 1, (28, 28, 1), 20)
    make("resnet8", resnet8, 2, (32, 32, 3), 10)
    make("dscnn", dscnn, 3, (49, 10, 1), 10)


if __name__ == "__main__":
    main()
