#!/usr/bin/env bash
# GPU checks of the explanation engine on a lent GPU machine: the CUDA tests (explanations on
# GPU in eval mode, GRU and LSTM), then the explanation benchmark on the GPU. Results go to $OUT.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_explain_engine.py 2>&1 \
  | tee "$out/pytest.log" | tail -8
python3 benchmarks/bench_explain.py --out "$out" --device cuda --repeats 10 2>&1 | tee "$out/bench.log"
