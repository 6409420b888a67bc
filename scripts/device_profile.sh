#!/usr/bin/env bash
# Per-layer GPU time of resincept and PyTorch side by side, in one device
# call (prepare with scripts/prepare_device.sh; carry [".gl", ".devbin"]):
#   BATCHES="32 1" bash scripts/device_profile.sh [MODEL ...]
# (default: inception_v3 at batch 32 and 1). Writes
# MODEL_bBATCH_resincept.json (`bench --profile --json`: every
# dispatch's timestamp-query time) and MODEL_bBATCH_pytorch.json
# (scripts/profile_pytorch.py: CUDA events around each module) to $OUT
# (or ./device-out), and PyTorch's device-resident forward time at the
# first batch. At most 8 files come back from a call: 3 models x 1 batch
# or 1 model x 3 batches. Compare offline with scripts/compare_profiles.py.
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export RESINCEPT_BACKEND=vulkan RESINCEPT_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
bin=.devbin/resincept
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(inception_v3)
read -r -a batches <<< "${BATCHES:-32 1}"
for model in "${models[@]}"; do
  for batch in "${batches[@]}"; do
    "$bin" bench --model "$model" --batch "$batch" --iters 5 --profile --json \
      > "$out/${model}_b${batch}_resincept.json" 2>> "$out/log.txt"
    python3 scripts/profile_pytorch.py --model "$model" --batch "$batch" --json \
      > "$out/${model}_b${batch}_pytorch.json" 2>> "$out/log.txt"
  done
  python3 scripts/bench_pytorch.py --model "$model" --batch "${batches[0]}" --device-resident --iters 30 \
    --json >> "$out/pytorch_resident.jsonl" 2>> "$out/log.txt"
done
ls -la "$out"
tail -n 5 "$out/log.txt"
