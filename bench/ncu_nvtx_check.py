"""Does ``ncu --nvtx --nvtx-include "trtperf@<result id>/"`` see exactly the
kernels of one measured window, and none of the warm-up? (issue 18)

A generated suite (``perf/test_ncu.py``, two tests whose ids carry ``/``,
``[``, ``]`` and ``::``) launches one spin kernel per iteration; each test
measures exactly N iterations after at least 5 warm-up iterations and the
setup launches (graph upload, one warm launch). Under ncu with the filter
that ``pytest_trtperf.report.nsight.ncu_filter`` builds for one result:

* A: graphs on, filter on test A  -> exactly N kernels profiled
* B: graphs off, filter on test B -> exactly N kernels profiled
* C: as A without ``--trt-nvtx``  -> 0 (the selection comes from our range)

N profiled kernels out of >= 2 * (N + 7) launched means: only the window's.
When A is not N, run D (a ``regex:`` filter) tells escaping problems from
others.

A relative gate (``test_c``: ``trt_bench.compare`` of a spin kernel, side a,
against an ``add_one`` kernel, side b, N iterations per side, interleaved):

* E: filter on the result id   -> exactly 2N kernels, N of each (the id's
  range holds the whole interleaved run)
* F: filter on ``<id> [a]``    -> exactly N kernels, all ``spin``
* G: filter on ``<id> [b]``    -> exactly N kernels, all ``add_one`` Run on a GPU machine with ncu, from the repository root:

    PYTHONPATH=$PWD python bench/ncu_nvtx_check.py [--iterations 20] [--out DIR]

Prints Markdown for bench/RESULTS.md; exit status 0 when A, B, C, E, F and G hold.
Uses ``--clock-control none``: the card's clocks are left as they are.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from pytest_trtperf.core.identity import result_id  # noqa: E402
from pytest_trtperf.relative.serve import plugin_args  # noqa: E402
from pytest_trtperf.report.nsight import ncu_filter  # noqa: E402

SUITE = '''
import importlib.util
import pytest

spec = importlib.util.spec_from_file_location("k", {kernels!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
K = mod.Kernels()


@pytest.mark.parametrize("p", ["p/q"])
def test_a(trt_bench, p):
    trt_bench.measure(lambda stream: K.spin(stream, 5_000), timer="cuda", name="k")


def test_b(trt_bench):
    trt_bench.measure(lambda stream: K.spin(stream, 5_000), timer="cuda")


def test_c(trt_bench):
    from pytest_trtperf.gpu import cuda

    buf = cuda.DeviceBuffer(1024)
    trt_bench.compare(lambda stream: K.spin(stream, 5_000), lambda stream: K.add_one(stream, buf.ptr, 256),
                      # ncu replays each profiled kernel, so the side it profiles runs ~100x
                      # slower (seen: b/a 105 when only b was profiled): a bound no such
                      # run can break; only the kernels ncu saw are checked here.
                      timer="cuda", max_slowdown="100000%", name="ab", remeasure=False)
    buf.close()
'''

NODE_A = "perf/test_ncu.py::test_a[p/q]"
NODE_B = "perf/test_ncu.py::test_b"
NODE_C = "perf/test_ncu.py::test_c"
PROFILED = re.compile(r'==PROF== Profiling "([^"]+)"')


def find_ncu() -> str | None:
    found = shutil.which("ncu")
    if found:
        return found
    for pattern in ("/usr/local/cuda*/bin/ncu", "/opt/nvidia/nsight-compute/*/ncu"):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    return None


def run(ncu: str, work: Path, flt: str, extra: list[str], n: int, log: Path) -> tuple[int, list[str], dict]:
    json_path = work / f"{log.stem}.json"
    cmd = [ncu, "--nvtx", "--nvtx-include", flt, "--target-processes", "all", "--clock-control", "none",
           "--metrics", "gpu__time_duration.sum",
           sys.executable, "-m", "pytest", "perf/test_ncu.py", *plugin_args(), "-p", "no:cacheprovider", "-q",
           "--trt-baseline=off", f"--trt-iterations={n}", "--trt-warmup-ms=1", f"--trt-json={json_path}", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=240, env=env)
    text = proc.stdout + proc.stderr
    log.write_text(" ".join(cmd) + "\n\n" + text)
    names = PROFILED.findall(text)
    doc = json.loads(json_path.read_text()) if json_path.is_file() else {}
    return proc.returncode, names, doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--out", default=None, help="directory for the ncu logs (default: a temporary one)")
    args = ap.parse_args()
    ncu = find_ncu()
    if ncu is None:
        print("ncu not found (PATH, /usr/local/cuda*/bin, /opt/nvidia/nsight-compute/*)")
        return 2
    from pytest_trtperf.gpu import nvtx as nvtx_layer

    if nvtx_layer.unavailable_reason() is not None:
        print(f"cannot check: {nvtx_layer.unavailable_reason()}")
        return 2
    version = subprocess.run([ncu, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1:]
    work = Path(tempfile.mkdtemp(prefix="trtperf-ncu-"))
    (work / "pytest.ini").write_text("[pytest]\n")
    (work / "perf").mkdir()
    (work / "perf" / "test_ncu.py").write_text(SUITE.format(kernels=str(ROOT / "tests/gpu/gpu_kernels.py")))
    out = Path(args.out) if args.out else work
    out.mkdir(parents=True, exist_ok=True)
    n = args.iterations
    id_a, id_b, id_c = result_id(NODE_A, "k"), result_id(NODE_B, None), result_id(NODE_C, "ab")
    spin, add = {"spin": n}, {"add_one": n}
    only_c = ["--trt-nvtx", "-k", "test_c"]
    # (label, setup, filter, pytest options, expected kernel counts by name)
    runs = [("A", "graphs on, --trt-nvtx", ncu_filter(id_a), ["--trt-nvtx", "-k", "not test_c"], spin),
            ("B", "graphs off, --trt-nvtx", ncu_filter(id_b), ["--trt-nvtx", "--trt-no-cuda-graph", "-k",
                                                               "not test_c"], spin),
            ("C", "graphs on, no --trt-nvtx (control)", ncu_filter(id_a), ["-k", "not test_c"], {}),
            ("E", "compare(), both sides", ncu_filter(id_c), only_c, {**spin, **add}),
            ("F", "compare(), side a", ncu_filter(id_c, "a"), only_c, spin),
            ("G", "compare(), side b", ncu_filter(id_c, "b"), only_c, add)]
    rows = []
    ok = True
    for label, what, flt, extra, want in runs:
        rc, names, doc = run(ncu, work, flt, extra, n, out / f"ncu_{label}.log")
        warm = [r.get("warmup_iterations") for r in doc.get("results", [])]
        got = {k: names.count(k) for k in sorted(set(names))}
        good = rc == 0 and got == want
        ok &= good
        rows.append((label, what, flt, sum(want.values()), len(names), warm, rc, good))
    if rows[0][4] != n:
        flt = "regex:trtperf@.*test_a.*/"
        rc, names, doc = run(ncu, work, flt, ["--trt-nvtx", "-k", "not test_c"], n, out / "ncu_D.log")
        rows.append(("D", "diagnostic: regex filter, graphs on", flt, n, len(names), [], rc, None))
    print(f"### ncu keeps to the measured window ({', '.join(version) or 'ncu'})\n")
    print(f"`PYTHONPATH=$PWD python bench/ncu_nvtx_check.py --iterations {n}`: two measurements, one spin kernel "
          f"per iteration, and one `trt_bench.compare` (spin against add_one), exactly {n} measured iterations "
          f"each (per side), warm-up >= 5 iterations plus setup launches; ncu `--nvtx --nvtx-include <filter> "
          f"--clock-control none`.\n")
    print("| run | setup | filter | expected | profiled | warm-up iterations (A, B) | ok |")
    print("| --- | --- | --- | ---: | ---: | --- | --- |")
    for label, what, flt, expected, got, warm, rc, good in rows:
        mark = "-" if good is None else ("yes" if good else f"NO (rc {rc})")
        print(f"| {label} | {what} | `{flt}` | {expected} | {got} | {warm} | {mark} |")
    print(f"\nlogs: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
