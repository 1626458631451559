#!/usr/bin/env bash
# Issue 16's demonstration end to end: the MNIST-trained int8 LeNet-5 on the
# shipped test digits in one writer's style (tools/style_digits.sh), before
# and after fine-tuning on the first 300 of them, measured on the other
# 1,700; beside it the float network the blob was quantized from,
# fine-tuned the same way (`picocnn finetune-f32`: plain SGD, same rate and
# epochs, one image per step in the same order, only the chosen layers):
# the upper reference.
#
# Reuses target/main-job/lenet5.safetensors (`cargo xtask main-job`) when it
# is there, else trains it with the main job's recipe (seed 1, about 1.5
# minutes on 2 cores). Writes target/finetune-demo/.
#
#   bash tools/finetune_demo.sh        (EPOCHS, LR, SEED in the environment)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
epochs=${EPOCHS:-3}
lr=${LR:-0.01}
seed=${SEED:-1}
out=target/finetune-demo
bin=target/release/picocnn
cargo build --quiet --release --features cli --bin picocnn
mkdir -p "$out"
ckpt=target/main-job/lenet5.safetensors
if [ ! -f "$ckpt" ]; then
    ckpt=$out/lenet5.safetensors
    echo "training LeNet-5 (the main job's recipe) into $ckpt" >&2
    "$bin" train --model lenet5 --data data/mnist --epochs 30 --optimizer adamw \
        --weight-decay 1e-4 --schedule cosine --label-smoothing 0.1 --augment digits \
        --seed 1 --out "$ckpt" 2>/dev/null
fi
"$bin" export --model "$ckpt" --data data/mnist --precision int8 --out "$out/lenet5.pcnn" 2>/dev/null
bash tools/style_digits.sh "$out/styled" >/dev/null
# "A -> B" of a fine-tuning run's last line.
accuracies() { tail -n 1 | awk '{print $3, $6}'; }
read -r i8_before i8_after < <("$bin" finetune --model "$out/lenet5.pcnn" --data "$out/styled" \
    --epochs "$epochs" --lr "$lr" --seed "$seed" --out "$out/tuned.pcnn" | accuracies)
f32() {
    "$bin" finetune-f32 --model "$ckpt" --data "$out/styled" --epochs "$epochs" --lr "$lr" \
        --out "$out/tuned-$1.safetensors" "${@:2}" | accuracies
}
read -r f_before f_last < <(f32 last --train-last 1)
read -r _ f_biases < <(f32 biases --train-last 1 --train-biases)
read -r _ f_two < <(f32 two --train-last 2)
echo
echo "held-out accuracy (%) on 1,700 styled test digits; tuned on 300, $epochs epochs, lr $lr"
printf '%-30s %8s %8s %8s %8s %8s\n' "trained" "int8" "int8" "f32" "f32" "f32 -"
printf '%-30s %8s %8s %8s %8s %8s\n' "" "before" "after" "before" "after" "int8"
printf '%-30s %8s %8s %8s %8s %8.2f\n' "last dense layer" "$i8_before" "$i8_after" \
    "$f_before" "$f_last" "$(awk "BEGIN {print $f_last - $i8_after}")"
printf '%-30s %8s %8s %8s %8s\n' "last dense + earlier biases" - - "$f_before" "$f_biases"
printf '%-30s %8s %8s %8s %8s\n' "last two dense layers" - - "$f_before" "$f_two"
