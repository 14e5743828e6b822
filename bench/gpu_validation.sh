#!/usr/bin/env bash
# One device call that validates everything GPU-side that CI cannot:
# read-only NVML probe, the GPU tests (CUDA layer, workloads, the TensorRT
# double on real CUDA, the plugin end to end), and the example suite's torch
# tests through the plugin. Never changes the GPU's settings.
# Usage on the GPU machine, from the repo root: bash bench/gpu_validation.sh OUTDIR
set -u
OUT=${1:-/tmp/trtperf-gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
# Optional GPU extras that the machine cannot download: wheels carried in .whl/.
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-extras .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site-extras
fi
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
  python3 -c "import torch, numpy, pytest; print('torch', torch.__version__, 'numpy', numpy.__version__, 'pytest', pytest.__version__)"
  python3 -c "import cuda.bindings; print('cuda.bindings', cuda.bindings.__version__)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
# Install the plugin (no downloads: the lent machine reaches no index) so its
# entry point is registered, as for a user; pytester subprocess tests need it.
# Without that, load it by module name.
PLUGIN=()
python3 -m pip install --no-deps --no-build-isolation --no-index -q -e . > "$OUT/install.txt" 2>&1 \
  || PLUGIN=(-p pytest_trtperf.plugin.hooks)
echo "plugin: ${PLUGIN[*]:-installed entry point}"
python3 bench/nvml_probe.py > "$OUT/nvml_probe.txt" 2>&1; echo "nvml_probe rc=$?"
python3 -m pytest tests/gpu tests/trt -m gpu "${PLUGIN[@]}" -p no:cacheprovider -q -rs \
  > "$OUT/gpu_tests.txt" 2>&1; echo "gpu tests rc=$?"
tail -5 "$OUT/gpu_tests.txt"
cd example_suite && rm -rf .trtperf-gpu && \
python3 -m pytest . "${PLUGIN[@]}" -p no:cacheprovider -q -rs --trt-baseline-dir=.trtperf-gpu \
  --trt-baseline=update > "$OUT/example_update.txt" 2>&1; echo "example update rc=$?"
python3 -m pytest . "${PLUGIN[@]}" -p no:cacheprovider -q -rs --trt-baseline-dir=.trtperf-gpu \
  --trt-json="$OUT/example_compare.json" --trt-report="$OUT/example_report.html" > "$OUT/example_compare.txt" 2>&1
echo "example compare rc=$?"
cp -r .trtperf-gpu "$OUT/" 2>/dev/null; rm -rf .trtperf-gpu
tail -15 "$OUT/example_compare.txt"
