#!/usr/bin/env bash
# LeNet-5 on the shipped digits with and without augmentation: final test
# accuracy per seed and the median seconds per epoch, each pipeline against
# none, runs alternating so that all see the same machine load.
#
#   bash tools/augment_figures.sh ["pipeline" ...]
#
# Pipelines are `picocnn train --augment` texts (default: digits). SEEDS
# (default "1 2 3"), EPOCHS (default 20) and EXTRA (more train flags,
# default "--schedule cosine") come from the environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SEEDS=${SEEDS:-1 2 3}
EPOCHS=${EPOCHS:-20}
EXTRA=${EXTRA:---schedule cosine}
if [ $# -eq 0 ]; then set -- digits; fi
cargo build --quiet --release --features cli --bin picocnn
out=target/augment-figures
mkdir -p "$out"
pipelines=(none "$@")
for seed in $SEEDS; do
    for k in "${!pipelines[@]}"; do
        # shellcheck disable=SC2086
        target/release/picocnn train --recipe keras --model lenet5 --data data/mnist --epochs "$EPOCHS" \
            --seed "$seed" $EXTRA --augment "${pipelines[$k]}" \
            --out "$out/p$k.safetensors" --log "$out/p$k-s$seed.jsonl" >/dev/null 2>&1
    done
done
python3 - "$out" "$SEEDS" "${pipelines[@]}" <<'PY'
import json, statistics, sys
out, seeds, pipes = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
base = None
for k, p in enumerate(pipes):
    runs = [[json.loads(l) for l in open(f"{out}/p{k}-s{s}.jsonl")] for s in seeds]
    accs = [100 * r[-1]["test_accuracy"] for r in runs]
    secs = statistics.median(e["seconds"] for r in runs for e in r[1:])
    base = base or secs
    print(f"{p}\n    accuracy {' / '.join(f'{a:.2f}' for a in accs)} % (mean {statistics.mean(accs):.2f} %)"
          f"  {secs:.3f} s/epoch ({100 * (secs / base - 1):+.0f} %)")
PY
