"""Test models for `picocnn import`: Keras networks converted to
TensorFlow Lite int8 (int8 input and output, per-channel weights), with
test inputs and the outputs TensorFlow Lite's reference kernels give for
them, written to tests/models/tflite/:

- `lenet5_int8`: LeNet-5 (tools/keras_lenet.py) trained for two epochs on
  the repository's digits; its inputs are the first 50 test digits,
  quantized as the model's input asks.

- `dsconv_int8`: a depthwise-separable network in the style of DS-CNN
  (32x32x3: conv 3x3 stride 2 to 16, then two blocks of depthwise 3x3 and
  1x1 convolution with a residual add, average pool 4x4, flatten, dense 10,
  softmax), Keras's initial weights, calibrated on random images; its
  inputs are 20 random int8 images.

- `pad_relu_int8`: a standalone ReLU6 on the input, explicit zero padding
  (1 above, 2 below, 2 left, 1 right) before a valid 3x3 convolution,
  flatten, dense 10; Keras's initial weights; 20 random int8 images.

Each model comes with `<name>.tflite`, `<name>_x.npy` (int8, [N, H, W, C])
and `<name>_y.npy` (int8 outputs of the reference kernels).

    target/litert-venv/bin/python tools/tflite/make_test_models.py
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from keras_lenet import idx, lenet  # noqa: E402
from litert_compare import quantize  # noqa: E402

OUT = "tests/models/tflite"


def reference(tflite, x):
    """Outputs of TensorFlow Lite's reference kernels, one input at a time."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=tflite, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for item in x:
        it.set_tensor(i["index"], item[None])
        it.invoke()
        ys.append(it.get_tensor(o["index"])[0])
    return np.stack(ys), i


def save(name, tflite, x):
    y, _ = reference(tflite, x)
    with open(os.path.join(OUT, f"{name}.tflite"), "wb") as f:
        f.write(tflite)
    np.save(os.path.join(OUT, f"{name}_x.npy"), x)
    np.save(os.path.join(OUT, f"{name}_y.npy"), y)
    print(f"{name}: {len(tflite)} bytes, {len(x)} inputs, outputs {y.shape} {y.dtype}")


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    os.makedirs(OUT, exist_ok=True)
    tf.keras.utils.set_random_seed(1)
    data = "data/mnist"
    x = idx(os.path.join(data, "train-images-idx3-ubyte.gz"))[..., None].astype(np.float32) / 255.0
    y = idx(os.path.join(data, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    model = lenet(tf)
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    tflite = quantize(model, x[:200])
    test = idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"))[:50, ..., None].astype(np.float32) / 255.0
    _, inp = reference(tflite, np.zeros((1, 28, 28, 1), np.int8))
    scale, zp = inp["quantization"]
    xq = np.clip(np.round(test / scale) + zp, -128, 127).astype(np.int8)
    save("lenet5_int8", tflite, xq)

    tf.keras.utils.set_random_seed(2)
    L = tf.keras.layers
    inp = L.Input((32, 32, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inp)
    for _ in range(2):
        y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
        y = L.Conv2D(16, 1, activation="relu")(y)
        x = L.Add()([x, y])
    x = L.AveragePooling2D(4)(x)
    x = L.Flatten()(x)
    out = L.Softmax()(L.Dense(10)(x))
    model = tf.keras.Model(inp, out)
    samples = np.random.default_rng(2).random((100, 32, 32, 3), dtype=np.float32)
    tflite = quantize(model, samples)
    xr = np.random.default_rng(3).integers(-128, 128, (20, 32, 32, 3), dtype=np.int8)
    save("dsconv_int8", tflite, xr)

    tf.keras.utils.set_random_seed(4)
    inp = L.Input((12, 12, 3))
    x = L.ReLU(max_value=6.0)(inp)
    x = L.ZeroPadding2D(((1, 2), (2, 1)))(x)
    x = L.Conv2D(8, 3)(x)
    x = L.Flatten()(x)
    model = tf.keras.Model(inp, L.Dense(10)(x))
    samples = (np.random.default_rng(4).random((100, 12, 12, 3), dtype=np.float32) - 0.3) * 10
    tflite = quantize(model, samples)
    xr = np.random.default_rng(5).integers(-128, 128, (20, 12, 12, 3), dtype=np.int8)
    save("pad_relu_int8", tflite, xr)


if __name__ == "__main__":
    main()
