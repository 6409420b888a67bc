#!/usr/bin/env bash
# Prepares the one device call of scripts/device_side_by_side.sh, on the
# development machine (x86-64): builds the CLI and the two GPU test binaries
# it runs into .devbin/, and fetches the Vulkan loader packages into .gl/
# (both ignored by git, both carried by the call). Then, in one device call
# with carry [".gl", ".devbin"] and a timeout that leaves room to rerun:
#   bash scripts/device_side_by_side.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

cargo build --release --bin resincept
mkdir -p .devbin
cp target/release/resincept .devbin/resincept
# The test binaries find their fixtures through the absolute path of the
# kernels-tests crate they were built in; the device script recreates it.
for t in conv2d golden; do
  exe=$(cargo test --release -p kernels-tests --test "$t" --no-run --message-format=json |
    python3 -c 'import json, sys
exes = [m["executable"] for m in map(json.loads, sys.stdin)
        if m.get("reason") == "compiler-artifact" and m.get("executable")]
print(exes[-1])')
  cp "$exe" ".devbin/$t-test"
done
(cd kernels-tests && pwd) > .devbin/manifest_dir.txt
echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' (plus uncommitted changes)')" \
  > .devbin/commit.txt
strip .devbin/resincept .devbin/*-test

if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" update
  (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .devbin .gl
