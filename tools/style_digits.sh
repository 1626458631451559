#!/usr/bin/env bash
# The fine-tuning demonstration's data: the 2,000 shipped test digits
# (data/mnist) in one fixed writer's style the model never saw in training,
# as MNIST IDX files in OUT (default target/styled-digits): the first TUNE
# (default 300) to fine-tune on, the other 1,700 held out.
#
# The style (picocnn::data::style, documented there):
#   1. shear 0.4: row y takes its pixels from x + round((14 - y) * 0.4), so
#      strokes lean right about the centre row (pixels from outside are 0);
#   2. thicken 2: every pixel becomes the maximum of the 5x5 square around
#      it (grey dilation, clipped at the border).
# Nothing is drawn at random: every run writes the same bytes.
#
#   bash tools/style_digits.sh [OUT]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-target/styled-digits}
cargo build --quiet --release --features cli --bin picocnn
rm -rf "$out"
target/release/picocnn restyle --data data/mnist --out "$out" \
    --shear 0.4 --thicken 2 --tune "${TUNE:-300}"
