#!/usr/bin/env bash
# Packs what a GPU machine needs to run the backend op tests and benchmark built here, for
# machines that have the NVIDIA driver and the CUDA 13 toolkit but none of our Debian
# libraries (MPI, HDF5, oneDNN, Boost, SentencePiece, OpenMP, ...):
#   BUILD/gpu-bundle/shardlm-gpu.tar.gz   bin/  stripped test_backend_ops, bench_train_step_cuda, shardlm
#                                         lib/  every shared library they load (ldd), except
#                                               what the GPU machine must provide itself: the
#                                               driver (libcuda), cuBLAS/cuBLASLt (600 MB; from
#                                               its CUDA toolkit) and glibc (libc, libm, ld-linux...)
#   BUILD/runtime-libs/                   the same libraries unpacked, for inspection
# Gzip because the libraries alone are ~70 MB (oneDNN is 40 MB) and a device call carries at
# most 64 MiB; packed they are ~25 MB. scripts/gpu-check.sh unpacks and runs the bundle.
#
#   usage: scripts/collect-runtime-libs.sh [BUILD_DIR]     (default: build-cuda)
# Build first, without -march=native (the GPU machine's CPU may lack this one's extensions):
#   cmake -S . -B build-cuda -DSHARDLM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DSHARDLM_NATIVE=OFF
#   cmake --build build-cuda -j2 --target test_backend_ops bench_train_step_cuda shardlm
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$repo/build-cuda}")
programs=(tests/test_backend_ops bench/bench_train_step_cuda shardlm)
# Provided by the GPU machine: the driver, cuBLAS, and glibc's libraries.
provided='^(libcuda\.so|libcublas\.so|libcublasLt\.so|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|ld-linux)'

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"

for program in "${programs[@]}"; do
  if [[ ! -x "$build/$program" ]]; then
    echo "collect-runtime-libs: $build/$program is missing; build it first (see the usage in $0)" >&2
    exit 1
  fi
  cp "$build/$program" "$stage/bin/"
  strip --strip-unneeded "$stage/bin/$(basename "$program")"
  # "libfoo.so.1 => /path/libfoo.so.1 (0x...)"; "libfoo.so.1 => not found" is an error.
  while read -r name path; do
    if [[ "$path" != /* ]]; then
      echo "collect-runtime-libs: $program needs $name, which ldd cannot find" >&2
      exit 1
    fi
    [[ "$name" =~ $provided ]] && continue
    cp -L "$path" "$stage/lib/$name"
  done < <(ldd "$build/$program" | awk '/=>/ {print $1, $3}')
done

rm -rf "$build/runtime-libs"
cp -r "$stage/lib" "$build/runtime-libs"
mkdir -p "$build/gpu-bundle"
tar -C "$stage" -czf "$build/gpu-bundle/shardlm-gpu.tar.gz" bin lib

echo "libraries: $(ls "$stage/lib" | wc -l) files, $(du -sh "$stage/lib" | cut -f1) unpacked"
echo "programs:  $(du -ch "$stage"/bin/* | tail -1 | cut -f1) stripped"
echo "bundle:    $build/gpu-bundle/shardlm-gpu.tar.gz ($(du -h "$build/gpu-bundle/shardlm-gpu.tar.gz" | cut -f1))"
echo "device call: carry [\"${build#"$repo"/}/gpu-bundle\"], command: bash scripts/gpu-check.sh"
