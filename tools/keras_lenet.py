"""LeNet-5 in Keras/TensorFlow on the repository's digits, the reference
that `picocnn train --model lenet5` is compared with (see compare_keras.sh).

Same network (conv 5x5x6 same + ReLU, max pool 2x2, conv 5x5x16 valid + ReLU,
max pool 2x2, dense 120-84-10), same recipe (Adam 1e-3, batch 64, pixels
/ 255, no augmentation), same work per epoch (a pass over the 8,000 training
digits, then the 2,000 test digits evaluated). Prints one JSON object per
epoch, as `picocnn train --log` writes them.

    python tools/keras_lenet.py [--data data/mnist] [--epochs 10] [--seed 1]
"""

import argparse
import gzip
import json
import os
import time

import numpy as np


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def lenet(tf):
    """The network, logits out (no softmax)."""
    L = tf.keras.layers
    return tf.keras.Sequential(
        [
            L.Input((28, 28, 1)),
            L.Conv2D(6, 5, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(16, 5, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(120, activation="relu"),
            L.Dense(84, activation="relu"),
            L.Dense(10),
        ]
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    load = lambda name: idx(os.path.join(args.data, name))
    x_train = load("train-images-idx3-ubyte.gz")[..., None].astype(np.float32) / 255.0
    y_train = load("train-labels-idx1-ubyte.gz").astype(np.int64)
    x_test = load("t10k-images-idx3-ubyte.gz")[..., None].astype(np.float32) / 255.0
    y_test = load("t10k-labels-idx1-ubyte.gz").astype(np.int64)

    model = lenet(tf)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    class Log(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print(
                json.dumps(
                    {
                        "epoch": epoch + 1,
                        "seconds": time.perf_counter() - self.start,
                        "test_accuracy": logs["val_accuracy"],
                        "train_accuracy": logs["accuracy"],
                        "train_loss": logs["loss"],
                    }
                ),
                flush=True,
            )

    model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=args.epochs,
        shuffle=True,
        validation_data=(x_test, y_test),
        validation_batch_size=256,
        callbacks=[Log()],
        verbose=0,
    )


if __name__ == "__main__":
    main()
