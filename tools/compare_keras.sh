#!/usr/bin/env bash
# Seconds per epoch of LeNet-5 training, picocnn against Keras/TensorFlow,
# on this machine in the same run: ROUNDS rounds (default 3), each training
# both for EPOCHS epochs (default 10), alternating so that both see the same
# machine load. Epoch 1 is left out of both (Keras traces its graph then).
# Prints the median seconds per epoch of each, the ratio and both accuracies.
#
#   PYTHON=/path/to/venv/bin/python tools/compare_keras.sh
#
# PYTHON must have tensorflow-cpu==2.21.0 (tools/requirements.txt); without
# it the script makes a venv in target/keras-venv and installs it there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-2}
if [ -z "${PYTHON:-}" ]; then
    PYTHON=target/keras-venv/bin/python
    if ! "$PYTHON" -c 'import tensorflow' 2>/dev/null; then
        python3 -m venv target/keras-venv
        target/keras-venv/bin/pip install -q -r tools/requirements.txt
    fi
fi
cargo build -q --release --features cli
out=target/compare-keras
mkdir -p "$out"
for r in $(seq 1 "$ROUNDS"); do
    target/release/picocnn train --recipe keras --model lenet5 --data data/mnist --epochs "$EPOCHS" \
        --seed "$r" --threads "$THREADS" --out "$out/lenet5.safetensors" \
        --log "$out/picocnn-$r.jsonl" >/dev/null
    TF_NUM_INTRAOP_THREADS=$THREADS TF_NUM_INTEROP_THREADS=$THREADS \
        "$PYTHON" tools/keras_lenet.py --data data/mnist --epochs "$EPOCHS" --seed "$r" \
        >"$out/keras-$r.jsonl" 2>/dev/null
done
python3 - "$out" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(name):
    runs = [[json.loads(l) for l in open(f"{out}/{name}-{r}.jsonl")] for r in range(1, rounds + 1)]
    secs = [e["seconds"] for run in runs for e in run[1:]]
    accs = [run[-1]["test_accuracy"] for run in runs]
    return statistics.median(secs), accs
p, pa = load("picocnn")
k, ka = load("keras")
print(f"picocnn: {p:.3f} s/epoch (median), final test accuracy per round {[round(100 * a, 2) for a in pa]}")
print(f"keras:   {k:.3f} s/epoch (median), final test accuracy per round {[round(100 * a, 2) for a in ka]}")
print(f"picocnn is {k / p:.2f}x as fast as Keras")
PY
