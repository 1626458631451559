#!/usr/bin/env bash
# Every zoo model, trained with the recipes of train_zoo.sh (seed 1), then
# exported in f32 and int8 (post-training quantization, 1,000 calibration
# images) and evaluated through the interpreter on the 2,000 test digits:
# prints float and int8 accuracy, arena and blob bytes per model.
#
#   bash tools/zoo_export.sh [seed]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seed=${1:-1}
cargo build --quiet --release --features cli --bin picocnn
out=target/zoo-export
mkdir -p "$out"
bin=target/release/picocnn
row() {
    local name=$1
    shift
    "$bin" train --recipe keras --data data/mnist --seed "$seed" --out "$out/$name.safetensors" "$@" >/dev/null 2>&1
    for p in f32 int8; do
        "$bin" export --model "$out/$name.safetensors" --data data/mnist --precision "$p" \
            --out "$out/$name-$p.pcnn" >/dev/null 2>&1
        "$bin" eval --model "$out/$name-$p.pcnn" --data data/mnist --json >"$out/$name-$p.json"
    done
    python3 - "$out" "$name" <<'PY'
import json, sys
out, name = sys.argv[1], sys.argv[2]
f = json.load(open(f"{out}/{name}-f32.json"))
i = json.load(open(f"{out}/{name}-int8.json"))
print(f"| {name} | {100 * f['accuracy']:.2f} | {100 * i['accuracy']:.2f} | {i['arena_bytes']:,} | {i['model_bytes']:,} | {f['arena_bytes']:,} | {f['model_bytes']:,} |")
PY
}
echo "| model | float % | int8 % | int8 arena | int8 blob | f32 arena | f32 blob |"
echo "|---|---|---|---|---|---|---|"
row lenet5 --model lenet5 --epochs 30 --optimizer adamw --weight-decay 1e-4 --schedule cosine --label-smoothing 0.1 --augment digits
row alexnet_mini --model alexnet-mini --epochs 10
row vgg_mini --model vgg-mini --epochs 10 --schedule cosine
row inception_mini --model inception-mini --epochs 20 --lr 3e-3 --schedule cosine --label-smoothing 0.1
row resnet8 --model resnet8 --epochs 8
