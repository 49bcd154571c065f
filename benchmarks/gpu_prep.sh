#!/usr/bin/env bash
# On the CPU machine, before the device call: fill .device/ (git-ignored) with what the GPU
# machine cannot download: the mamba-ssm / causal-conv1d sources and wheels of seqdiff's
# pure-Python dependencies that the device image lacks (Python 3.12, manylinux x86_64).
#   bash benchmarks/gpu_prep.sh [SHARED_DEVICE_DIR]      (default ../shared/device)
# Then: device run with carry [".device"] and command `bash benchmarks/gpu_check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-../shared/device}
mkdir -p .device/wheels
cp "$src"/mamba_ssm-*.tar.gz .device/ 2>/dev/null || echo "note: no mamba-ssm archive in $src (the kernel steps will record it)"
cp "$src"/causal_conv1d-*.tar.gz .device/ 2>/dev/null || true
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
py=${PYTHON:-python3}
for pkg in "hydra-core==1.3.2" "omegaconf==2.3.0" "antlr4-python3-runtime==4.9.3" "pyfaidx" "biopython"; do
  $py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" -d .device/wheels "$pkg" \
    || $py -m pip download -q --no-deps --no-binary=:all: -d .device/wheels "$pkg"
done
ls -la .device .device/wheels
du -sh .device
