#!/usr/bin/env bash
# The benchmark of docs/benchmarks.md on CUDA: HuBERT Base (random weights, no download), batch 8 x 4 s,
# bf16 (autocast) and fp32, every registered method eager and torch.compile'd, each in its own process.
# Usage: benchmarks/gpu.sh OUT_DIR [more `effspeech bench` flags, e.g. --rounds 3]
# Writes OUT_DIR/cuda_<dtype>.json (rows), OUT_DIR/cuda_<dtype>.md (table + progress) and OUT_DIR/device.txt.
set -euo pipefail
out=$(realpath -m "${1:?usage: benchmarks/gpu.sh OUT_DIR [bench flags]}")
shift
cd "$(dirname "$0")/.."
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } > "$out/device.txt"
for dtype in bf16 fp32; do
  "$python" -m effspeech.tools.cli bench -u hubert_adapter --arch hubert_base \
    --device cuda --dtype "$dtype" --batch 8 --seconds 4 --steps 20 --warmup 3 --rounds 2 --infer-reps 20 \
    --compile --json "$out/cuda_$dtype.json" "$@" 2>&1 | tee "$out/cuda_$dtype.md"
done
