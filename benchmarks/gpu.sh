#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md, in one call of about 5 minutes on an H100/H200.
# 1. The trainer: 50 KS steps of none, houlsby and lora on the embedded hubert_mini, eager, --compile,
#    --cache-frozen (a second, warm run) and --precision bf16; results.json's wall time per run.
#    Needs a Mini-SUPERB tiny tree (DATA=...; espeak-ng makes one: effspeech synth --preset tiny --out DIR).
# 2. The benchmark: HuBERT Base (random weights, no download), batch 8 x 4 s, bf16 autocast, every method
#    eager and torch.compile'd, with the warm-cache rows (+cache), each in its own process.
# Usage: DATA=/path/to/mini-superb-tiny benchmarks/gpu.sh OUT_DIR [more `effspeech bench` flags]
# Writes OUT_DIR/device.txt, OUT_DIR/trainer.tsv, OUT_DIR/cuda_bf16.json and OUT_DIR/cuda_bf16.md.
set -euo pipefail
out=$(realpath -m "${1:?usage: DATA=DIR benchmarks/gpu.sh OUT_DIR [bench flags]}")
shift
cd "$(dirname "$0")/.."
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } > "$out/device.txt"

if [ -n "${DATA:-}" ]; then
  steps="config.runner.total_steps=50,,config.runner.log_step=10,,config.runner.eval_step=50,,config.runner.save_step=50"
  printf 'method\tvariant\twall_s\tlast_loss\n' > "$out/trainer.tsv"
  for method in none houlsby lora; do
    for variant in eager compile cache-cold cache-warm bf16; do
      case $variant in
        eager) flags=() ;; compile) flags=(--compile) ;; bf16) flags=(--precision bf16) ;;
        cache-*) flags=(--cache-frozen "$out/cache") ;;
      esac
      dir="$out/runs/$method-$variant"
      "$python" run_downstream.py -m train -u hubert_mini_adapter -d ks --adapter "$method" -p "$dir" \
        --data-root "$DATA" --device cuda -o "$steps" "${flags[@]}" > "$dir.log" 2>&1 || echo "failed: $dir.log"
      "$python" -c 'import json,sys; r=json.load(open(sys.argv[1]+"/results.json"))["train"]; print(sys.argv[2], sys.argv[3], r["wall_time_s"], r["train_loss"][-1]["loss"], sep="\t")' \
        "$dir" "$method" "$variant" >> "$out/trainer.tsv" || true
    done
  done
fi

"$python" -m effspeech.tools.cli bench -u hubert_adapter --arch hubert_base \
  --methods none,houlsby,lora,adapterbias,finetune --device cuda --dtype bf16 --batch 8 --seconds 4 \
  --steps 20 --warmup 3 --rounds 1 --infer-reps 10 --compile --cache \
  --json "$out/cuda_bf16.json" "$@" 2>&1 | tee "$out/cuda_bf16.md"
