"""``--trt-export-dir``: files named by result id, written by the process that
measured (real xdist workers here), indexed by the controller."""

from __future__ import annotations

import json
import numpy as np
import pytest

from pytest_trtperf.report import exports
from pytest_trtperf.core.identity import file_stem
from pytest_trtperf.trt.profiler import trtexec_profile

TESTS = '''
import hashlib
import pytest

DATA = b"x" * 20_000

@pytest.mark.parametrize("p", ["a/b", "a_b", "../../escape"])
def test_ids(trt_bench, p):
    trt_bench.measure(lambda: hashlib.sha256(DATA).digest(), name="sha")

def test_names(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(DATA).digest(), name="../../../outside")
    trt_bench.measure(lambda: hashlib.sha256(DATA[:100]).digest(), name=".hidden")
'''

RUN = ["--trt-max-time=0.4", "--trt-min-time=0.1", "--trt-warmup-ms=20", "--trt-baseline=off", "-p",
       "no:cacheprovider"]


@pytest.mark.parametrize("workers", [0, 2])
def test_samples_files_match_the_results_and_stay_inside_the_directory(pytester: pytest.Pytester,
                                                                         workers: int) -> None:
    pytester.makepyfile(test_perf=TESTS)
    args = [*RUN, "--trt-export-dir=out", "--trt-json=res.json"] + (["-n", str(workers)] if workers else [])
    r = pytester.runpytest_subprocess(*args)
    r.assert_outcomes(passed=4)
    out = pytester.path / "out"
    results = json.loads((pytester.path / "res.json").read_text())["results"]
    assert len(results) == 5
    index = json.loads((out / exports.INDEX).read_text())
    assert sorted(index["results"]) == sorted(x["id"] for x in results)
    r.stdout.fnmatch_lines([f"exports: 5 result(s) in {out} (index: index.json)"])
    # Every file is directly in the directory: nothing escaped, nothing hidden.
    everything = sorted(p.relative_to(pytester.path).as_posix() for p in pytester.path.rglob("*.json"))
    assert everything == sorted(["res.json", "out/index.json"] + [f"out/{n['samples']}"
                                                                  for n in index["results"].values()])
    assert not any(p.name.startswith(".") for p in out.iterdir())
    stems = {file_stem(x["id"]) for x in results}
    assert len(stems) == 5  # "a/b" and "a_b" look alike once made safe; the hash keeps them apart
    for res in results:
        doc = json.loads((out / index["results"][res["id"]]["samples"]).read_text())
        lat = np.asarray(doc["series"]["latency"])
        assert doc["result"] == res["id"] and doc["unit"] == "ms" and doc["kind"] == "host"
        assert doc["iterations"] == len(lat) == res["latency_ms"]["n"]  # the deciding measurement, every sample
        assert abs(float(np.median(lat)) - res["latency_ms"]["median"]) <= 1e-6 + 1e-3 * res["latency_ms"]["median"]
        assert doc["warmup_iterations"] == res["warmup_iterations"] and doc["stop_reason"] == res["stop_reason"]


RELATIVE = '''
import hashlib
import pytest

DATA = b"x" * 40_000


def once():
    hashlib.sha256(DATA).digest()


def twice():
    hashlib.sha256(DATA).digest()
    hashlib.sha256(DATA).digest()


@pytest.mark.parametrize("p", ["x/y"])
def test_ab(trt_bench, p):
    trt_bench.compare(once, twice, max_slowdown="3%", name="../ab", remeasure=False)  # fails: b is 2x
'''


@pytest.mark.parametrize("workers", [0, 2])
def test_a_relative_gate_exports_both_sides(pytester: pytest.Pytester, workers: int) -> None:
    """``trt_bench.compare`` results are exported like ordinary ones, per side
    (failed or not): every measured iteration of a and of b, in order, with
    the block sizes that make the pairs."""
    pytester.makepyfile(test_perf=RELATIVE)
    args = [*RUN, "--trt-export-dir=out", "--trt-json=res.json"] + (["-n", str(workers)] if workers else [])
    r = pytester.runpytest_subprocess(*args)
    r.assert_outcomes(failed=1)
    out = pytester.path / "out"
    (res,) = json.loads((pytester.path / "res.json").read_text())["results"]
    rel = res["relative"]
    index = json.loads((out / exports.INDEX).read_text())["results"]
    assert index == {res["id"]: {"a.samples": exports.file_names(res["id"])["a.samples"],
                                 "b.samples": exports.file_names(res["id"])["b.samples"]}}
    r.stdout.fnmatch_lines([f"exports: 1 result(s) in {out} (index: index.json)"])
    assert sorted(p.name for p in out.iterdir()) == sorted([exports.INDEX, *index[res["id"]].values()])
    for side in ("a", "b"):
        doc = json.loads((out / index[res["id"]][f"{side}.samples"]).read_text())
        lat = np.asarray(doc["series"]["latency"])
        assert doc["result"] == res["id"] and doc["side"] == side and doc["label"] == rel[side]["label"]
        assert doc["kind"] == "host" and doc["origin"] == "compare"
        assert doc["iterations"] == len(lat) == sum(doc["blocks"]) == rel[side]["latency_ms"]["n"]
        assert len(doc["blocks"]) == len(doc["b_first"]) == rel["pairs"]
        assert abs(float(np.median(lat)) - rel[side]["latency_ms"]["median"]) <= 1e-3 * rel[side]["latency_ms"]["median"]
    assert "profile this test under Nsight Systems" not in r.stdout.str()  # host work: no GPU profile


def test_an_unusable_directory_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=TESTS)
    (pytester.path / "afile").write_text("x")
    r = pytester.runpytest_subprocess(*RUN, "--trt-export-dir=afile")
    assert r.ret == 4
    errors = [line for line in r.stderr.lines if "trt-export-dir" in line]
    assert len(errors) == 1 and "afile" in errors[0] and "Traceback" not in r.stderr.str(), r.stderr.str()


def test_export_dir_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=TESTS)
    pytester.makeini("[pytest]\ntrt_export_dir = exported\n")
    r = pytester.runpytest_subprocess(*RUN, "-k", "test_names")
    r.assert_outcomes(passed=1)
    assert len(json.loads((pytester.path / "exported" / exports.INDEX).read_text())["results"]) == 2


def test_trtexec_profile_layout() -> None:
    times = {"conv": [1.0, 3.0, 2.0], "fc": [0.5, 0.5, 0.5], "never": []}
    rows = trtexec_profile(["conv", "fc", "never"], times)
    assert rows[0] == {"count": 3}
    conv, fc = rows[1:]
    assert (conv["name"], conv["timeMs"], conv["averageMs"], conv["medianMs"]) == ("conv", 6.0, 2.0, 2.0)
    assert (fc["name"], fc["timeMs"], fc["averageMs"]) == ("fc", 1.5, 0.5)
    assert abs(conv["percentage"] + fc["percentage"] - 100.0) < 1e-9 and conv["percentage"] == pytest.approx(80.0)
