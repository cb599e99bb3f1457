#!/usr/bin/env bash
# The GPU check for a lent machine without vLLM or network (torch, transformers, peft, accelerate only): test-time
# training s/step and tokens/s at max_seq_len 2048 and 8192 (batch 1; batch 16 with per-device 2, the seed's 1.8
# s/step at 2048), hf AIRV predictions/s one at a time vs batched, the dtypes picked, peak GPU memory; under 8 min.
# Here first: .venv/bin/python bench/gpu_check_hf.py prepare   (config, tokenizer, tasks: outputs/gpu_check_bundle)
# There: bash bench/gpu_check_hf.sh, carrying outputs/gpu_check_bundle; output also in $OUT/gpu_check_hf.md
set -euo pipefail
PY=${PY:-python3}
out=${OUT:-outputs/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | tee "$out/gpu.txt" || true
timeout 470 $PY bench/gpu_check_hf.py run --bundle "${BUNDLE:-outputs/gpu_check_bundle}" --out "$out" "$@" 2>&1 \
    | grep --line-buffered -v -E "[a-z]+/s\]|train_runtime" | tee "$out/gpu_check_hf.md"
rm -rf "$out/model"  # random weights: nothing to bring back
