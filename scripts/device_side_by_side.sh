#!/usr/bin/env bash
# The H100 side-by-side of docs/BENCHMARKS.md in one device call: resincept
# (Vulkan; split-K auto, which is on for a GPU, and off) and PyTorch (CUDA,
# eager fp32, TF32 off) on the same card, same models, batches and sizes,
# both timed end to end; resincept's f16 precision against its f32 and
# against PyTorch FP16 (.half(), channels_last) for ResNet-50 and
# Inception-v3 at batch 1 and 32; then the per-layer profile, the conv
# layers alone (split-K A/B, f32 and native f16) and the golden suite (f16
# included) on the card. Writes at most 7 files to $OUT (or ./device-out):
# info.txt, resincept.jsonl, pytorch.jsonl, profile.txt, layers.txt,
# golden.txt, log.txt (everything on stderr).
#
# Prepare on the development machine: bash scripts/prepare_device.sh
# Then one device call with carry [".gl", ".devbin"] (193 s on an H200,
# 2026-11-30; give it a 560 s timeout):
#   bash scripts/device_side_by_side.sh
# It ends by printing the BENCHMARKS.md table (scripts/bench_table.py).
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
log="$out/log.txt"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export RESINCEPT_BACKEND=vulkan RESINCEPT_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
# The test binaries read their fixtures at the path of the crate they were
# built in: make that path lead to this tree's kernels-tests.
md=$(cat .devbin/manifest_dir.txt)
if [ ! -e "$md/golden" ]; then
  mkdir -p "$(dirname "$md")" && ln -sfn "$PWD/kernels-tests" "$md"
fi
bin=.devbin/resincept
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
  cat .devbin/commit.txt
  "$bin" info
} > "$out/info.txt" 2>&1

# 1. End to end, side by side; split-K auto and off alternate so that
#    clock drift touches both alike. At batch 1, where most convs split,
#    the split-K target (256 workgroups under auto) is swept too.
for model in resnet50 inception_v3; do
  for batch in 1 32; do
    sweep="auto off"
    [ "$batch" = 1 ] && sweep="auto off 128 512 1024"
    for sk in $sweep; do
      "$bin" bench --model "$model" --batch "$batch" --warmup 5 --iters 30 --split-k "$sk" \
        --json >> "$out/resincept.jsonl" 2>> "$log"
    done
    python3 scripts/bench_pytorch.py --model "$model" --batch "$batch" --warmup 5 --iters 30 \
      --json >> "$out/pytorch.jsonl" 2>> "$log"
  done
done
# 1'. The 128x64 tile for deep 1x1 convs (the launcher's default from an
#     H100 sweep; an H200 layer sweep found 64x64 faster on 6 of the 8
#     layers given it): end to end with the rule off, at batch 32 where
#     it applies, and at batch 1.
for model in resnet50 inception_v3; do
  for batch in 32 1; do
    "$bin" bench --model "$model" --batch "$batch" --warmup 5 --iters 30 --tall-tile off \
      --json >> "$out/resincept.jsonl" 2>> "$log"
    "$bin" bench --model "$model" --batch "$batch" --warmup 5 --iters 30 \
      --json >> "$out/resincept.jsonl" 2>> "$log"
  done
done
# 1a. f16 precision: resincept's (native f16 on a card with SHADER_F16)
#     against its f32 runs above and PyTorch FP16 (.half(), channels_last,
#     cuDNN's tensor-core layout). Needs `resincept bench --precision f16`;
#     a CLI without it is noted in the log and the f16 rows are left out.
if "$bin" bench --help 2>&1 | grep -q -- 'f16'; then
  for model in resnet50 inception_v3; do
    for batch in 1 32; do
      "$bin" bench --model "$model" --batch "$batch" --warmup 5 --iters 30 --precision f16 \
        --json >> "$out/resincept.jsonl" 2>> "$log"
    done
  done
else
  echo "resincept bench has no --precision f16: f16 rows left out" >> "$log"
fi
for model in resnet50 inception_v3; do
  for batch in 1 32; do
    python3 scripts/bench_pytorch.py --model "$model" --batch "$batch" --warmup 5 --iters 30 \
      --precision f16 --channels-last --json >> "$out/pytorch.jsonl" 2>> "$log"
  done
done
# 1b. ResNeXt-50: the direct conv for grouped convs up to 0 (never), 16
#     (the default) and 32 channels per group, beside PyTorch.
for batch in 1 32; do
  for gd in 16 0 32; do
    "$bin" bench --model resnext50_32x4d --batch "$batch" --warmup 5 --iters 30 \
      --grouped-direct "$gd" --json >> "$out/resincept.jsonl" 2>> "$log"
  done
  python3 scripts/bench_pytorch.py --model resnext50_32x4d --batch "$batch" --warmup 5 --iters 30 \
    --json >> "$out/pytorch.jsonl" 2>> "$log"
done
# 2. Where the time goes, per layer.
for batch in 1 32; do
  "$bin" bench --model resnet50 --batch "$batch" --iters 5 --profile
done > "$out/profile.txt" 2>> "$log"
# 3. The 22 conv layers alone, launcher's choice and unsplit, in f32 and
#    in native f16 (packed f16 is the fallback for devices without
#    SHADER_F16; add f16-packed here to time it too).
RESINCEPT_BENCH_STORAGE=f32,f16 timeout 300 .devbin/conv2d-test --ignored bench_layers \
  --nocapture > "$out/layers.txt" 2>&1
# 4. The golden suite (PyTorch's outputs) on this card, then the card
#    against the CPU executor layer by layer (split-K on, as a GPU runs).
timeout 300 .devbin/golden-test > "$out/golden.txt" 2>&1
for model in resnet50 inception_v3; do
  timeout 60 "$bin" check --model "$model" --layers >> "$out/golden.txt" 2>&1
done
python3 scripts/bench_table.py "$out/resincept.jsonl" "$out/pytorch.jsonl"
tail -n 3 "$out/layers.txt" "$out/golden.txt"
