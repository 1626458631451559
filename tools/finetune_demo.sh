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
lr=${LR:-0.003}
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
"$bin" export --model "$ckpt" --data data/mnist --precision int8 --trainable 1 \
    --out "$out/lenet5.pcnn" 2>/dev/null
bash tools/style_digits.sh "$out/styled" >/dev/null
# "A -> B" of a fine-tuning run's last line.
accuracies() { tail -n 1 | awk '{print $3, $6}'; }
int8() {
    "$bin" finetune --model "$out/lenet5.pcnn" --data "$out/styled" --epochs "$epochs" \
        --lr "$1" --seed "$seed" --out "$out/tuned-$2.pcnn" "${@:3}" | accuracies
}
f32() {
    "$bin" finetune-f32 --model "$ckpt" --data "$out/styled" --epochs "$epochs" --lr "$1" \
        --out "$out/tuned-$2.safetensors" "${@:3}" | accuracies
}
read -r i8_before i8_last < <(int8 "$lr" last)
read -r _ i8_biases < <(int8 "$lr" biases --trainable 1 --trainable-biases all)
read -r _ i8_two < <(int8 "$lr" two --trainable 2)
read -r f_before f_last < <(f32 "$lr" last --train-last 1)
read -r _ f_biases < <(f32 "$lr" biases --train-last 1 --train-biases)
read -r _ f_two < <(f32 "$lr" two --train-last 2)
echo
echo "held-out accuracy (%) on 1,700 styled test digits; tuned on 300, $epochs epochs"
printf '%-34s %6s %8s %8s %8s %8s %8s\n' "trained" "lr" "int8" "int8" "f32" "f32" "f32 -"
printf '%-34s %6s %8s %8s %8s %8s %8s\n' "" "" "before" "after" "before" "after" "int8"
row() {
    printf '%-34s %6s %8s %8s %8s %8s %8.2f\n' "$1" "$2" "$i8_before" "$3" "$f_before" "$4" \
        "$(awk "BEGIN {print $4 - $3}")"
}
row "last dense layer" "$lr" "$i8_last" "$f_last"
row "last dense + every bias below" "$lr" "$i8_biases" "$f_biases"
row "last two dense layers" "$lr" "$i8_two" "$f_two"
