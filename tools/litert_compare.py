"""An int8 (or with `--precision f32`, float) network, one image at a
time on one thread: picocnn (`picocnn bench`) against LiteRT
(`ai-edge-litert`) with its built-in kernels and with XNNPACK,
alternating in one run so that all see the same machine.

`--network lenet5`: the LiteRT model is the same network (conv 5x5x6 same
+ ReLU, max pool 2x2, conv 5x5x16 valid + ReLU, max pool 2x2, dense
120-84-10) trained for one epoch in Keras on the repository's digits and
quantized to full int8 (int8 input and output) with 200 calibration
digits; picocnn runs the committed trained LeNet-5
(`tests/models/lenet5_mnist_i8_fused.pcnn`).

`--network resnet8`: MLPerf Tiny's ResNet-8 (32x32x3; a 3x3 convolution to
16 channels, three residual stacks of 16, 32 and 64 channels, the last two
with stride 2 and a 1x1 shortcut, global average pool, dense 64-10), with
Keras's initial weights, quantized with 100 random calibration images;
picocnn runs `tests/models/resnet8_i8.pcnn`, the same shape. With
`--precision f32` both run the float network: LiteRT the Keras model
converted without quantization, picocnn the same shape in f32 written by
`cargo run --example test_model` (random weights: the timing does not
depend on them).

Prints one JSON object: the median microseconds per image of each over
the rounds, the ratios, and the CPU.

    python tools/litert_compare.py [--network lenet5|resnet8] [--precision int8|f32]
        [--rounds 5] [--seconds 2]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import numpy as np

from keras_lenet import idx, lenet


def quantize(model, samples, precision="int8"):
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "f32":
        return conv.convert()
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([samples[i : i + 1]] for i in range(len(samples)))
    if precision == "16x8":
        ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        conv.target_spec.supported_ops = [ops]
        conv.inference_input_type = tf.int16
        conv.inference_output_type = tf.int16
        return conv.convert()
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def tflite_resnet8(precision):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    L = tf.keras.layers
    inp = L.Input((32, 32, 3))
    x = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    for c, stride in [(16, 1), (32, 2), (64, 2)]:
        y = L.Conv2D(c, 3, strides=stride, padding="same", activation="relu")(x)
        y = L.Conv2D(c, 3, padding="same")(y)
        shortcut = x if stride == 1 else L.Conv2D(c, 1, strides=stride, padding="same")(x)
        x = L.ReLU()(L.Add()([shortcut, y]))
    x = L.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inp, L.Dense(10)(x))
    samples = np.random.default_rng(1).random((100, 32, 32, 3), dtype=np.float32)
    return quantize(model, samples, precision)


def tflite_lenet(data):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    x = idx(os.path.join(data, "train-images-idx3-ubyte.gz"))[..., None].astype(np.float32) / 255.0
    y = idx(os.path.join(data, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    model = lenet(tf)
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    return quantize(model, x[:200])


def litert_median_us(model, xnnpack, seconds):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_content=model, num_threads=1, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    rng = np.random.default_rng(1)
    if inp["dtype"] == np.float32:
        x = rng.random(inp["shape"], dtype=np.float32)
    else:
        x = rng.integers(-128, 128, inp["shape"], dtype=np.int8)
    it.set_tensor(inp["index"], x)
    warm = time.perf_counter()
    while time.perf_counter() - warm < seconds / 10:
        it.invoke()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter_ns()
        it.invoke()
        times.append((time.perf_counter_ns() - t) / 1000.0)
    return statistics.median(times)


def picocnn_median_us(exe, blob, seconds):
    out = subprocess.run(
        [exe, "bench", "--model", blob, "--seconds", str(seconds), "--batch", "0", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    v = json.loads(out)
    return v["median_us"], v["path"]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", choices=["lenet5", "resnet8"], default="lenet5")
    ap.add_argument("--precision", choices=["int8", "f32"], default="int8")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--picocnn", default="target/release/picocnn")
    ap.add_argument("--model", help="the picocnn blob (default: the network's committed one)")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.network == "lenet5":
        if args.precision != "int8":
            ap.error("LeNet-5 is compared in int8 (the committed trained model)")
        tfl = tflite_lenet(args.data)
        args.model = args.model or "tests/models/lenet5_mnist_i8_fused.pcnn"
    else:
        tfl = tflite_resnet8(args.precision)
        if args.precision == "f32" and not args.model:
            args.model = "target/resnet8_f32.pcnn"
            subprocess.run(
                ["cargo", "run", "-q", "--release", "--features", "std", "--example",
                 "test_model", "--", "resnet8", "f32", args.model],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        args.model = args.model or "tests/models/resnet8_i8.pcnn"
    runs = {"picocnn": [], "litert_builtin": [], "litert_xnnpack": []}
    path = None
    for _ in range(args.rounds):
        us, path = picocnn_median_us(args.picocnn, args.model, args.seconds)
        runs["picocnn"].append(us)
        runs["litert_builtin"].append(litert_median_us(tfl, False, args.seconds))
        runs["litert_xnnpack"].append(litert_median_us(tfl, True, args.seconds))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(
        json.dumps(
            {
                "network": args.network,
                "precision": args.precision,
                "cpu": cpu_name(),
                "picocnn_path": path,
                "median_us": med,
                "rounds_us": runs,
                "picocnn_over_builtin": med["picocnn"] / med["litert_builtin"],
                "picocnn_over_xnnpack": med["picocnn"] / med["litert_xnnpack"],
            }
        )
    )


if __name__ == "__main__":
    main()
