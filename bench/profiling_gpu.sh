#!/usr/bin/env bash
# Issue 18 on a GPU, in one command (about 2-3 minutes): what --trt-nvtx and
# --trt-profiler-api cost (bench/profiling.py), whether ncu's NVTX filter keeps
# to one measured window (bench/ncu_nvtx_check.py), and the GPU tests of the
# profiling aids. Prints the Markdown for bench/RESULTS.md; logs go to OUTDIR.
# The GPU machine reaches no package index: NVIDIA's nvtx wheel is installed
# from .whl/ when it is there (see the README of the device tool for how to
# download it). Never changes the GPU's settings (ncu runs --clock-control none).
# Usage from the repository root: bash bench/profiling_gpu.sh OUTDIR
set -u
OUT=${1:-/tmp/trtperf-profiling}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if ! python3 -c "import nvtx" 2>/dev/null && ls .whl/nvtx-*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-nvtx .whl/nvtx-*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site-nvtx
fi
python3 -m pip install --no-deps --no-build-isolation --no-index -q -e . > "$OUT/install.txt" 2>&1 \
  || echo "plugin not installed (see $OUT/install.txt); tests load it by module name"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
  python3 -c "import importlib.metadata as m; print('nvtx', m.version('nvtx'), '| cuda-bindings', m.version('cuda-bindings'))"
} 2>&1 | tee "$OUT/env.txt"
echo
python3 bench/profiling.py --rounds 8 --seconds 0.4 --json "$OUT/profiling_cost.json" 2>&1 | tee "$OUT/profiling_cost.md"
echo
python3 bench/ncu_nvtx_check.py --iterations 20 --out "$OUT" 2>&1 | tee "$OUT/ncu_check.md"
echo
python3 -m pytest tests/gpu/test_profiling_on_gpu.py tests/gpu/test_relative_gpu.py tests/trt/test_exports_gpu.py -m gpu -p no:cacheprovider -q -rs \
  > "$OUT/gpu_tests.txt" 2>&1
echo "GPU tests of the profiling aids (rc=$?):"
tail -4 "$OUT/gpu_tests.txt"
