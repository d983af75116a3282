#!/usr/bin/env bash
# Installs the Debian packages shardlm needs, only if some are missing (quick when all are there).
# Runs as root on a fresh Debian 12 machine; `make demo` and `make test` call it first.
#   scripts/install-deps.sh            the build, test and demo dependencies
#   scripts/install-deps.sh PKG...     just these packages (scripts/install-slurm.sh uses it)
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang-format ccache
  clang libomp-dev
  libclang-rt-14-dev llvm  # ASan/UBSan/libFuzzer runtimes and llvm-symbolizer: only Recommends of clang
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libboost-program-options-dev nlohmann-json3-dev
  libgtest-dev libbenchmark-dev
  libdnnl-dev
  libsentencepiece-dev sentencepiece libicu-dev
  python3-torch python3-h5py python3-numpy python3-matplotlib
)
[ $# -gt 0 ] && packages=("$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "$(basename "$0"): installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
