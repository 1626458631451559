#!/usr/bin/env bash
# Trains every zoo model on the shipped MNIST split with the recipes of the
# closing notes and prints the final and best test accuracy and the seconds
# per epoch. About 6 minutes on 2 cores.
#
#   bash tools/train_zoo.sh [seed]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seed=${1:-1}
cargo build --quiet --release --features cli --bin picocnn
out=$(mktemp -d)
run() {
    local name=$1
    shift
    target/release/picocnn train --recipe keras --data data/mnist --seed "$seed" --out "$out/$name.safetensors" \
        --log "$out/$name.jsonl" "$@" >/dev/null 2>&1
    python3 - "$out/$name.jsonl" "$name" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{sys.argv[2]:<28} epochs {len(rows):>2}  final {100 * rows[-1]['test_accuracy']:.2f} %"
      f"  best {100 * max(r['test_accuracy'] for r in rows):.2f} %"
      f"  {sum(r['seconds'] for r in rows) / len(rows):.2f} s/epoch")
PY
}
run lenet5-keras --model lenet5 --epochs 10
run lenet5-best --model lenet5 --epochs 30 --optimizer adamw --weight-decay 1e-4 --schedule cosine --label-smoothing 0.1
run alexnet_mini --model alexnet-mini --epochs 10
run vgg_mini --model vgg-mini --epochs 10 --schedule cosine
run inception_mini --model inception-mini --epochs 20 --lr 3e-3 --schedule cosine --label-smoothing 0.1
run resnet8 --model resnet8 --epochs 8
