#!/usr/bin/env bash
# The one device call of issue 17 (about 9 minutes on an H100/H200): install seqdiff into the
# image's Python, build mamba-ssm for sm_90 in the background, run benchmarks/gpu_check.py.
# Prepare first on the CPU machine with `bash benchmarks/gpu_prep.sh`; carry .device.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
SITE=/tmp/seqdiff_site; mkdir -p "$SITE"
t0=$(date +%s)
# seqdiff's pure-Python dependencies the image lacks, then seqdiff itself (no deps: torch is the image's)
ls .device/wheels/*.whl >/dev/null 2>&1 && $PY -m pip install -q --no-index --no-deps --target "$SITE" .device/wheels/*.whl
$PY -m pip install -q --no-deps --no-build-isolation --target "$SITE" . > "$OUT/install.log" 2>&1 || echo "seqdiff install failed (see install.log)"
export PYTHONPATH="$SITE"
export PATH="$SITE/bin:$PATH"
echo "installed in $(( $(date +%s) - t0 )) s"
# mamba-ssm for sm_90 only, in the background (about 3 minutes with 16 jobs)
flag=/tmp/mamba_build_done; rm -f "$flag"
(
  set -e
  cd /tmp && rm -rf mamba_src && mkdir mamba_src && tar xzf "$OLDPWD"/.device/mamba_ssm-*.tar.gz -C mamba_src
  d=$(ls -d /tmp/mamba_src/mamba_ssm-*)
  $PY - "$d/setup.py" <<'PYEOF'
import re, sys
p = sys.argv[1]; s = open(p).read()
# keep only the sm_90 gencode pair (the build notes: ../shared/device/README.md)
s = re.sub(r'cc_flag\.append\("-gencode"\)\s*\n\s*cc_flag\.append\("arch=compute_(?!90\b)\d+a?,code=sm_\d+a?"\)', "pass", s)
assert 'arch=compute_90,code=sm_90' in s and s.count('-gencode') == 1, "unexpected setup.py layout"
open(p, "w").write(s)
PYEOF
  MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=FALSE MAX_JOBS=16 $PY -m pip wheel -q --no-deps --no-build-isolation -w /tmp/mamba_wheels "$d"
  $PY -m pip install -q --no-deps --target "$SITE" /tmp/mamba_wheels/*.whl
) > "$OUT/mamba_build.log" 2>&1 && echo "built in $(( $(date +%s) - t0 )) s" > "$flag" || echo "build failed (mamba_build.log)" > "$flag" &
$PY benchmarks/gpu_check.py --out "$OUT" --mamba-build-done "$flag" --budget 530
wait
