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
  (1 above, 2 below, 2 left, 1 right) before a valid 3x3 convolution, zero
  padding again (one cell each side) before a `same` 3x3 depthwise
  convolution of stride 2, flatten, dense 10; Keras's initial weights; 20 random int8 images.

- `resnet8_int8`: ResNet-8 as MLPerf Tiny's image classification model
  (32x32x3: conv 16, three residual stacks of 16, 32 and 64 channels with
  batch normalisation and 1x1 shortcuts where the stride is 2, average
  pool 8x8, dense 10, softmax); batch normalisation set from the
  calibration images' statistics; 10 random int8 images whose mean and
  contrast differ by image and channel.

- `dscnn_int8`: DS-CNN as MLPerf Tiny's keyword spotting model (49x10x1:
  conv 10x4 stride 2 to 64, four blocks of depthwise 3x3 and 1x1
  convolution with batch normalisation, average pool 25x5, dense 12,
  softmax); 10 such random int8 inputs.

- `concat_int8`: a concatenation of a 3x3 and a 1x1 convolution and the
  input, then a strided convolution, global average pooling, dense 10
  (in 16x8, the converter requantizes the concatenation's inputs to one
  scale with `QUANTIZE`); 20 random images.

- `mean_int8`: TensorFlow Lite's int8 `MEAN`: a 3x3 convolution, then
  Keras's global average pooling (`MEAN` over height and width) with and
  without
  `keepdims`, added, dense 10; 20 such random int8 images.

`lenet5_int8_digits.json` holds the classes TensorFlow Lite's reference
kernels give for each of the shipped test digits (pixels / 255, quantized
as the model's input asks) and how many are right.

Each model comes with `<name>.tflite`, `<name>_x.npy` (int8, [N, H, W, C])
and `<name>_y.npy` (int8 outputs of the reference kernels). Each but
`pad_relu` also comes as `<name>_f32`: the float32 conversion of the same
Keras network, with float inputs (LeNet-5's: the digits in [0, 1]; the
others': the random inputs before quantization) and the reference
kernels' float outputs. Each comes as `<name>_16x8` too: TensorFlow Lite's
16x8 quantization of the same network (int16 activations, input and
output; int8 weights; int64 biases), calibrated as the int8 one, on the
float inputs quantized to int16.

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
    digits(tflite, data, scale, zp)
    save("lenet5_f32", quantize(model, None, "f32"), test)
    save16("lenet5_16x8", model, x[:200], test)

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
    xf = np.random.default_rng(3).random((20, 32, 32, 3), dtype=np.float32)
    save("dsconv_f32", quantize(model, None, "f32"), xf)
    save16("dsconv_16x8", model, samples, xf)

    tf.keras.utils.set_random_seed(4)
    inp = L.Input((12, 12, 3))
    x = L.ReLU(max_value=6.0)(inp)
    x = L.ZeroPadding2D(((1, 2), (2, 1)))(x)
    x = L.Conv2D(8, 3)(x)
    x = L.ZeroPadding2D(1)(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = L.Flatten()(x)
    model = tf.keras.Model(inp, L.Dense(10)(x))
    samples = (np.random.default_rng(4).random((100, 12, 12, 3), dtype=np.float32) - 0.3) * 10
    tflite = quantize(model, samples)
    xr = np.random.default_rng(5).integers(-128, 128, (20, 12, 12, 3), dtype=np.int8)
    save("pad_relu_int8", tflite, xr)
    xf = (np.random.default_rng(5).random((20, 12, 12, 3), dtype=np.float32) - 0.3) * 10
    save16("pad_relu_16x8", model, samples, xf)

    tf.keras.utils.set_random_seed(6)
    save_both("resnet8", resnet8(tf), (32, 32, 3), 6, 10)
    tf.keras.utils.set_random_seed(7)
    save_both("dscnn", dscnn(tf), (49, 10, 1), 7, 10)

    tf.keras.utils.set_random_seed(8)
    inp = L.Input((12, 12, 3))
    x = L.Conv2D(16, 3, activation="relu")(inp)
    kept = L.Flatten()(L.GlobalAveragePooling2D(keepdims=True)(x))
    flat = L.GlobalAveragePooling2D()(L.DepthwiseConv2D(3, padding="same")(x))
    model = tf.keras.Model(inp, L.Dense(10)(L.Add()([kept, flat])))
    save_both("mean", model, (12, 12, 3), 8, 20)

    tf.keras.utils.set_random_seed(9)
    inp = L.Input((10, 10, 3))
    a = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    b = L.Conv2D(4, 1, activation="relu6")(inp)
    x = L.Concatenate()([a, b, L.MaxPooling2D(1)(inp)])
    x = L.GlobalAveragePooling2D()(L.Conv2D(8, 3, strides=2)(x))
    save_both("concat", tf.keras.Model(inp, L.Dense(10)(x)), (10, 10, 3), 9, 20)


def digits(tflite, data, scale, zp):
    """TensorFlow Lite's classes for every shipped test digit (its
    reference kernels), for the main job to hold picocnn's to."""
    import json

    images = idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"))[..., None].astype(np.float32) / 255.0
    labels = idx(os.path.join(data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    xq = np.clip(np.round(images / scale) + zp, -128, 127).astype(np.int8)
    y, _ = reference(tflite, xq)
    classes = [int(c) for c in y.argmax(axis=1)]
    correct = int(sum(c == l for c, l in zip(classes, labels)))
    with open(os.path.join(OUT, "lenet5_int8_digits.json"), "w") as f:
        json.dump({"digits": len(classes), "correct": correct, "classes": classes}, f)
        f.write("\n")
    print(f"lenet5_int8 on the {len(classes)} shipped test digits: {correct} correct")


def save_both(name, model, shape, seed, n):
    """`<name>_int8` as `calibrated` makes it, and `<name>_f32`: the same
    network in float32 on the same inputs before quantization."""
    tflite, xq, xf, samples = calibrated(model, shape, seed, n)
    save(f"{name}_int8", tflite, xq)
    save(f"{name}_f32", quantize(model, None, "f32"), xf)
    save16(f"{name}_16x8", model, samples, xf)


def save16(name, model, samples, xf):
    """The 16x8 conversion of `model` (int16 activations and input,
    calibrated on `samples`) on the float inputs `xf` quantized as its
    input asks."""
    tflite = quantize(model, samples, "16x8")
    _, inp = reference(tflite, np.zeros((1, *xf.shape[1:]), np.int16))
    scale, zp = inp["quantization"]
    x = np.clip(np.round(xf / scale) + zp, -32768, 32767).astype(np.int16)
    save(name, tflite, x)


def calibrated(model, shape, seed, n):
    """The model with batch normalisation set as training would leave it
    (each layer's statistics those of its input on the calibration data,
    random scales and offsets), quantized on random inputs in [-1, 1], and
    `n` random test inputs, int8 and the float ones they quantize."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    samples = varied(rng, 100, shape)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            x = tf.keras.Model(model.input, layer.input)(samples).numpy()
            c = x.shape[-1]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c).astype(np.float32),
                    rng.uniform(-0.2, 0.2, c).astype(np.float32),
                    x.mean(axis=(0, 1, 2)),
                    x.var(axis=(0, 1, 2)) + 1e-6,
                ]
            )
    # Logits centred and spread by about two from input to input, so that
    # the outputs differ by input.
    head = model.layers[-1]
    features = tf.keras.Model(model.input, head.input)(samples).numpy()
    w, b = head.get_weights()
    logits = features.reshape(len(samples), -1) @ w
    spread = float(np.std(logits - logits.mean(axis=0)))
    f = 2.0 / max(spread, 1e-6)
    head.set_weights([w * f, -logits.mean(axis=0) * f])
    tflite = quantize(model, samples)
    _, inp = reference(tflite, np.zeros((1, *shape), np.int8))
    scale, zp = inp["quantization"]
    xf = varied(rng, n, shape)
    x = np.clip(np.round(xf / scale) + zp, -128, 127).astype(np.int8)
    return tflite, x, xf, samples


def varied(rng, n, shape):
    """Random inputs in [-1, 1] whose mean and contrast differ per input
    and channel, as a global pool's features do for real data."""
    centre = rng.uniform(-0.6, 0.6, (n, 1, 1, shape[-1]))
    contrast = rng.uniform(0.1, 0.4, (n, 1, 1, shape[-1]))
    noise = rng.uniform(-1, 1, (n, *shape))
    return np.clip(centre + contrast * noise, -1, 1).astype(np.float32)


def resnet8(tf):
    """MLPerf Tiny's ResNet-8 (EEMBC's `resnet_v1_eembc`)."""
    L = tf.keras.layers
    reg = tf.keras.regularizers.l2(1e-4)

    def conv(x, c, k, stride):
        return L.Conv2D(c, k, strides=stride, padding="same", kernel_regularizer=reg)(x)

    inp = L.Input((32, 32, 3))
    x = L.Activation("relu")(L.BatchNormalization()(conv(inp, 16, 3, 1)))
    for c, stride in [(16, 1), (32, 2), (64, 2)]:
        y = L.Activation("relu")(L.BatchNormalization()(conv(x, c, 3, stride)))
        y = L.BatchNormalization()(conv(y, c, 3, 1))
        if stride != 1:
            x = conv(x, c, 1, stride)
        x = L.Activation("relu")(L.Add()([x, y]))
    x = L.Flatten()(L.AveragePooling2D(8)(x))
    return tf.keras.Model(inp, L.Dense(10, activation="softmax")(x))


def dscnn(tf):
    """MLPerf Tiny's DS-CNN for keyword spotting (49 frames of 10 MFCCs)."""
    L = tf.keras.layers
    inp = L.Input((49, 10, 1))
    x = L.Conv2D(64, (10, 4), strides=(2, 2), padding="same")(inp)
    x = L.Activation("relu")(L.BatchNormalization()(x))
    for _ in range(4):
        x = L.Activation("relu")(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(x)))
        x = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(64, 1)(x)))
    x = L.Flatten()(L.AveragePooling2D((25, 5))(x))
    return tf.keras.Model(inp, L.Dense(12, activation="softmax")(x))


if __name__ == "__main__":
    main()
