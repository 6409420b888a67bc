#!/usr/bin/env bash
# The H100 side-by-side of docs/BENCHMARKS.md in one device call: resincept
# (Vulkan) and PyTorch (CUDA, eager fp32, TF32 off) on the same card, same
# models, batches and sizes, both timed end to end. Writes JSON lines and
# the kernel test logs to $OUT (or ./device-out).
#
# Prepare on the development machine (x86-64), once:
#   cargo build --release --bin resincept
#   mkdir -p .devbin && cp target/release/resincept .devbin/
#   (and the .gl loader packages, see the device tool's README)
# Then, in one device call with carry [".gl", ".devbin"]:
#   bash scripts/device_side_by_side.sh
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export RESINCEPT_BACKEND=vulkan
bin=.devbin/resincept
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
"$bin" info > "$out/info.txt" 2>&1
for model in resnet50 inception_v3; do
  for batch in 1 32; do
    "$bin" bench --model "$model" --batch "$batch" --warmup 5 --iters 30 --json \
      >> "$out/resincept.jsonl" 2>> "$out/resincept.err"
    python3 scripts/bench_pytorch.py --model "$model" --batch "$batch" --warmup 5 --iters 30 --json \
      >> "$out/pytorch.jsonl" 2>> "$out/pytorch.err"
  done
done
"$bin" bench --model resnet50 --batch 32 --iters 5 --profile > "$out/profile_resnet50_b32.txt" 2>&1
cat "$out/resincept.jsonl" "$out/pytorch.jsonl"
