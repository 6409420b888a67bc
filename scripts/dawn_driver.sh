#!/usr/bin/env bash
# Makes Mesa 25's lavapipe (Debian bookworm-backports) available *aside* for
# the Dawn checks (scripts/dawn/), leaving the system's Vulkan driver alone.
#
# Why: Dawn (npm `webgpu`) refuses Debian 12's lavapipe, Mesa 22.3.6
# ("Vulkan shaderUniform*ArrayDynamicIndexing required"), and accepts the
# lavapipe of Mesa 25.0.7 from bookworm-backports. The rest of CI keeps
# Debian 12's own driver (what `apt-get install mesa-vulkan-drivers` gives a
# user), so only the Dawn run sees Mesa 25.
#
# What: fetches mesa-vulkan-drivers and libdrm2 / libdrm-amdgpu1 (with
# libdrm-common, their data files, for completeness) of the pinned
# backports versions with apt (its own source list, package lists and
# cache under DIR, so the system's apt configuration is not touched; apt
# checks the archive signature and each package's hash), unpacks them with
# `dpkg-deb -x` into DIR/root, and writes DIR/lvp_icd.json, a copy of
# lavapipe's ICD file whose library_path is absolute. The packages' other
# dependencies (libLLVM-15, libvulkan1, the X/Wayland client libraries) are
# Debian 12's own: they are installed with apt-get if missing (as root).
#
# Usage: scripts/dawn_driver.sh [DIR]      (DIR defaults to .dawn-driver/)
# Prints the environment for the Dawn run on stdout (also saved as
# DIR/env.sh), progress on stderr:
#   eval "$(scripts/dawn_driver.sh)"
#   (cd scripts/dawn && npm ci && node validate.mjs ...)
# Idempotent: a second run with the same versions downloads nothing.
# Override the pins with MESA_BPO_VERSION / LIBDRM_BPO_VERSION if the
# archive has moved on (then check the Dawn results again).
set -euo pipefail

MESA_BPO_VERSION=${MESA_BPO_VERSION:-25.0.7-2~bpo12+1}
LIBDRM_BPO_VERSION=${LIBDRM_BPO_VERSION:-2.4.123-1~bpo12+1}
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo "${ARCH/amd64/x86_64}-linux-gnu")

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/.dawn-driver}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
root=$dir/root
libdir=$root/usr/lib/$MULTIARCH
icd=$dir/lvp_icd.json
stamp=$dir/versions
want="mesa-vulkan-drivers=$MESA_BPO_VERSION libdrm2=$LIBDRM_BPO_VERSION libdrm-amdgpu1=$LIBDRM_BPO_VERSION libdrm-common=$LIBDRM_BPO_VERSION ($ARCH)"
log() { echo "dawn_driver: $*" >&2; }

print_env() {
  # NODEVICE_SELECT: Debian 12's implicit device-select layer would load
  # Mesa 25's layer library through LD_LIBRARY_PATH; neither is needed.
  cat >"$dir/env.sh" <<EOF
export VK_DRIVER_FILES=$icd
export VK_ICD_FILENAMES=$icd
export LD_LIBRARY_PATH=$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export NODEVICE_SELECT=1
EOF
  cat "$dir/env.sh"
}

if [[ -f $stamp && $(cat "$stamp") == "$want" && -f $icd && -f $libdir/libvulkan_lvp.so ]]; then
  log "Mesa $MESA_BPO_VERSION lavapipe already in $dir"
  print_env
  exit 0
fi

# ---- apt, with its own state under DIR ----------------------------------------
apt_dir=$dir/apt
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$dir/debs"
: >"$apt_dir/sources.list"
cat >"$apt_dir/sources.list.d/bookworm-backports.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
if [[ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
  log "installing debian-archive-keyring (to check the backports archive's signature)"
  apt-get install -y -qq debian-archive-keyring >/dev/null
fi
log "reading bookworm-backports' package list"
apt-get "${apt_opts[@]}" -qq update

pkgs=(mesa-vulkan-drivers="$MESA_BPO_VERSION" libdrm2="$LIBDRM_BPO_VERSION" libdrm-amdgpu1="$LIBDRM_BPO_VERSION"
  libdrm-common="$LIBDRM_BPO_VERSION")
for p in "${pkgs[@]}"; do
  have=$(apt-cache "${apt_opts[@]}" madison "${p%%=*}" 2>/dev/null | awk -F'|' '$3 ~ /backports/ {gsub(/ /, "", $2); print $2}')
  if ! grep -qxF -- "${p#*=}" <<<"$have"; then
    log "error: bookworm-backports has no ${p%%=*} ${p#*=} (it has: $(tr "\n" " " <<<"${have:-none}")); set MESA_BPO_VERSION / LIBDRM_BPO_VERSION to try another"
    exit 1
  fi
done
log "downloading ${pkgs[*]}"
rm -f "$dir"/debs/*.deb
(cd "$dir/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}")

# ---- the dependencies Debian 12 provides ------------------------------------------
# Every Depends of the four packages, minus the four themselves; each must
# be installed and satisfy its version bound.
deps=$(for d in "$dir"/debs/*.deb; do dpkg-deb -f "$d" Depends; done | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -v '^$' | sort -u)
missing=()
while IFS= read -r dep; do
  # "a (>= 1) | b" alternatives: take the first; ":any" qualifiers dropped.
  first=${dep%%|*}
  name=$(sed 's/[ (].*//; s/:any$//' <<<"$first")
  case $name in mesa-vulkan-drivers | libdrm2 | libdrm-amdgpu1 | libdrm-common) continue ;; esac
  if ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$name")
  fi
done <<<"$deps"
if ((${#missing[@]})); then
  log "installing Debian 12 packages the backported driver links against: ${missing[*]}"
  if [[ $(id -u) != 0 ]]; then
    log "error: not root; install them first: apt-get install ${missing[*]}"
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
while IFS= read -r dep; do
  first=${dep%%|*}
  name=$(sed 's/[ (].*//; s/:any$//' <<<"$first")
  case $name in mesa-vulkan-drivers | libdrm2 | libdrm-amdgpu1 | libdrm-common) continue ;; esac
  if [[ $first =~ \(([<>=]+)\ *([^\)]+)\) ]]; then
    op=${BASH_REMATCH[1]} ver=${BASH_REMATCH[2]}
    have=$(dpkg-query -W -f='${Version}' "$name")
    case $op in '>=') o=ge ;; '<=') o=le ;; '>>') o=gt ;; '<<') o=lt ;; '=') o=eq ;; *) o=ge ;; esac
    if ! dpkg --compare-versions "$have" "$o" "$ver"; then
      log "error: the backported driver needs $name ($op $ver); Debian 12 has $have"
      exit 1
    fi
  fi
done <<<"$deps"

# ---- unpack aside, point an ICD file at it ----------------------------------------
rm -rf "$root"
mkdir -p "$root"
for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$root"; done
src_icd=$(find "$root/usr/share/vulkan/icd.d" -name "lvp_icd*.json" | sort | head -n 1)
[[ -f $libdir/libvulkan_lvp.so && -f $src_icd ]] || {
  log "error: no lavapipe (libvulkan_lvp.so, lvp_icd*.json) in the unpacked packages under $root"
  exit 1
}
sed -E "s#(\"library_path\"[[:space:]]*:[[:space:]]*\")[^\"]*\"#\\1$libdir/libvulkan_lvp.so\"#" "$src_icd" >"$icd"
grep -q "\"library_path\": *\"$libdir/libvulkan_lvp.so\"" "$icd" || {
  log "error: could not rewrite library_path in $icd"
  exit 1
}
# Only the unpacked tree is needed from now on.
rm -rf "$apt_dir" "$dir/debs"
echo "$want" >"$stamp"
log "Mesa $MESA_BPO_VERSION lavapipe unpacked in $root"
print_env
