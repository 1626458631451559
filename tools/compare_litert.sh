#!/usr/bin/env bash
# One image on one thread (LeNet-5 or ResNet-8, int8 or f32): picocnn against LiteRT (built-in
# kernels and XNNPACK), alternating in one run (tools/litert_compare.py).
#
#   PYTHON=/path/to/venv/bin/python tools/compare_litert.sh [--rounds 5] [--seconds 2]
#
# PYTHON must have tensorflow-cpu, keras and ai-edge-litert; without it the
# script makes a venv in target/litert-venv and installs them there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    PYTHON=target/litert-venv/bin/python
    if ! "$PYTHON" -c 'import tensorflow, ai_edge_litert' 2>/dev/null; then
        python3 -m venv target/litert-venv
        target/litert-venv/bin/pip install -q tensorflow-cpu==2.21.0 keras==3.15.1 numpy==2.4.6 ai-edge-litert
    fi
fi
cargo build -q --release --features cli
"$PYTHON" tools/litert_compare.py "$@"
