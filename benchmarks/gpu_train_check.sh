#!/usr/bin/env bash
# On a lent GPU machine: can the cpu-scratch architecture (VGG19-BN 1/8) reach the demo's
# accuracy target with larger frames and more frames per clip? Synthesise, train, evaluate.
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$out/gpu.txt"
start=$(date +%s)
python3 -m vadx synth /tmp/data --clips 80,16,16 --frames 40 --size 112 2>/dev/null
echo "synth: $(( $(date +%s) - start )) s" | tee -a "$out/gpu.txt"
start=$(date +%s)
python3 -m vadx train /tmp/data --out /tmp/run --preset cpu-scratch --size 112 --frames 20 \
  --epochs "${EPOCHS:-30}" --workers 12 ${TRAIN_ARGS:-} 2>/dev/null | tail -3
echo "train: $(( $(date +%s) - start )) s" | tee -a "$out/gpu.txt"
cp /tmp/run/history.json "$out/history.json"
python3 -m vadx evaluate /tmp/run/best /tmp/data --out "$out/eval" --workers 8 2>/dev/null | tail -3
python3 - "$out" <<'PY'
import json, sys
h = json.load(open(f"{sys.argv[1]}/history.json"))
for e in h["epochs"]:
    print(e["epoch"], round(e["train_loss"], 3), round(e["val_accuracy"], 3), round(e["seconds"], 1))
PY
