#!/usr/bin/env bash
# The GPU checks in one run, for a machine with CUDA and torch installed:
#   1. the tests marked gpu (cuDNN fast path, MinGRU/MinLSTM scan, Trainer on CUDA),
#   2. benchmarks/scan_speed.py and benchmarks/recurrent_speed.py with --device cuda,
#   3. the sentiment and translation applications end to end with --train.device cuda
#      (needs RNNKIT_DATA_MIRROR pointing at a folder with sst2/ and multi30k/).
# Usage: OUT=results-dir RNNKIT_DATA_MIRROR=file:///path/to/data benchmarks/gpu.sh
# Everything goes to $OUT (default gpu-results/); each step runs even if one before failed.
set -uo pipefail
out=${OUT:-gpu-results}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
step() { echo "== $1"; shift; "$@" || { echo "!! failed: $*"; status=1; }; }

step "device" bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; \
python3 -c 'import torch; print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda)'" \
    > "$out/device.txt" 2>&1
cat "$out/device.txt"
step "pytest -m gpu" bash -c "python3 -m pytest -m gpu -p no:cacheprovider -q -rs tests/nn tests/training 2>&1 \
    | tee '$out/pytest_gpu.log'"
step "scan_speed B=8" bash -c "python3 benchmarks/scan_speed.py --device cuda --repeats 11 \
    2>&1 | tee '$out/scan_cuda_b8.md'"
step "scan_speed B=64" bash -c "python3 benchmarks/scan_speed.py --device cuda --batch 64 \
    --repeats 11 2>&1 | tee '$out/scan_cuda_b64.md'"
step "recurrent_speed" python3 benchmarks/recurrent_speed.py --device cuda \
    --output "$out/recurrent_cuda.md"
if [[ -n "${RNNKIT_DATA_MIRROR:-}" ]]; then
    runs=$(mktemp -d)
    step "sentiment on cuda" bash -c "python3 -m rnnkit sentiment train --preset sst2 \
        --train.device cuda --train.progress lines --run-dir '$runs/sst2' \
        && python3 -m rnnkit sentiment eval --checkpoint '$runs/sst2/best' --data sst2:dev \
        && python3 -m rnnkit sentiment predict --checkpoint '$runs/sst2/best' \
           'a gripping , funny film' 2>&1 | tee '$out/sentiment_cuda.log'"
    step "translate on cuda" bash -c "python3 -m rnnkit translate train --preset multi30k \
        --train.device cuda --train.max_seconds 120 --train.progress lines \
        --run-dir '$runs/mt' && python3 -m rnnkit translate predict --checkpoint '$runs/mt/best' \
        --beam 5 'A man is riding a bicycle .' 2>&1 | tee '$out/translate_cuda.log'"
fi
exit $status
