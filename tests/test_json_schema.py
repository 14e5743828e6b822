"""The --trt-json document validates against the packaged JSON Schema, and the
schema rejects what it should (so a field added to Result without updating
the schema fails here)."""

from __future__ import annotations

import copy
import json

import pytest

from helpers import QUICK, spin_test
from pytest_trtperf import cli
from pytest_trtperf.report.terminal import JSON_SCHEMA_VERSION

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def schema() -> dict:
    s = json.loads(cli.schema_text())
    jsonschema.Draft202012Validator.check_schema(s)
    return s


@pytest.fixture(scope="module")
def _documents() -> dict[str, dict]:
    """The real document, made once per module (two inner sessions) and copied per test."""
    return {}


@pytest.fixture
def document(pytester: pytest.Pytester, _documents: dict[str, dict]) -> dict:
    if "doc" not in _documents:
        pytester.makepyfile(test_perf=spin_test() + "\n\ndef test_named(trt_bench):\n"
                                                    "    trt_bench.measure(lambda: sum(range(300)), name='sum')\n"
                                                    "\n\ndef test_relative(trt_bench):\n"
                                                    "    trt_bench.compare(lambda: sum(range(300)), lambda: sum(range(300)),"
                                                    " max_slowdown='50%', name='ab')\n")
        pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=3)
        # The verdicts do not matter here (tiny host workloads on shared cores), the document does.
        r = pytester.runpytest(*QUICK, "--trt-json=r.json", "--trt-tolerance=80%")
        assert r.ret in (0, 1)
        _documents["doc"] = json.loads((pytester.path / "r.json").read_text())
    return copy.deepcopy(_documents["doc"])


def test_schema_version_matches_the_writer(schema: dict) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"]["const"] == JSON_SCHEMA_VERSION


def test_real_run_document_is_valid(schema: dict, document: dict) -> None:
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    assert document["schema_version"] == 2
    assert len(document["results"]) == 3
    assert all(r["verdict"]["status"] in ("pass", "improved", "regression") for r in document["results"])
    relative = [r for r in document["results"] if r["relative"] is not None]
    assert [r["id"] for r in relative] == ["test_perf.py::test_relative::ab"]
    rel = relative[0]["relative"]
    assert rel["origin"] == "compare" and rel["pairs"] == len(rel["pair_ratios"]) >= 3
    assert rel["ci"][0] <= rel["ratio"] <= rel["ci"][1] and rel["a"]["latency_ms"]["n"] > 0


def test_documents_with_gpu_fields_are_valid(schema: dict, document: dict) -> None:
    doc = copy.deepcopy(document)
    r = doc["results"][0]
    r["device_state"].update(kind="cuda", samples=3, flags=["power_throttle"], sm_clock_mhz_median=1980.0,
                             timeline=[[0.0, 1980, 2619, 650.5, 61], [0.1, 1950, 2619, 700, 62]])
    r["layers"] = [{"name": "gemm", "ms": 1.5, "type": "Gemm"}]
    r["extra_ms"] = {"gpu_compute": r["latency_ms"]}
    r["verdict"] = None
    r["memory"] = {"device_peak_bytes": 9 << 20, "device_total_bytes": 9 << 20, "context_memory_bytes": 8 << 20,
                   "plan_bytes": 56076, "weights_bytes": 38528, "build_peak_bytes": 3 << 20}
    r["memory_verdict"] = {"status": "regression", "tolerance": 0.1, "remeasured": True, "message": "grew",
                           "changes": [{"figure": "device_peak_bytes", "baseline": 4 << 20, "current": 9 << 20,
                                        "change": 1.25, "status": "regression"}]}
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    del r["memory"], r["memory_verdict"]  # documents written before memory was recorded stay valid
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_real_run_document_carries_memory(document: dict) -> None:
    for r in document["results"]:
        if r["relative"] is not None:
            continue  # a relative gate judges the pair's time ratio, not memory
        assert r["memory"]["host_peak_bytes"] >= 0
        assert r["memory_verdict"]["changes"][0]["figure"] == "host_peak_bytes"


def test_real_compare_verdicts_carry_the_between_run_term(schema: dict, document: dict) -> None:
    for r in document["results"]:
        if r["relative"] is not None:
            continue  # interleaved A/B: no between-run term, both sides share the run
        v = r["verdict"]
        assert v["decided_by"] in ("tolerance", "run_noise", "sample_noise")
        assert v["run_noise"]["source"] == "prior" and v["run_noise"]["family"] == "host"
        assert v["config_changes"] == []
        assert r["device_state"]["cpu_delayed"] is None  # QUICK turns the host watch off


def test_unreliable_and_host_state_documents_are_valid(schema: dict, document: dict) -> None:
    doc = copy.deepcopy(document)
    r = doc["results"][0]
    r["verdict"].update(status="unreliable", decided_by="gpu_busy",
                        message="unreliable: GPU busy (...); other processes: 4242 python3")
    r["device_state"].update(flags=["busy", "host_busy"], other_processes=["4242 python3"], cpu_delayed=0.4,
                             cpu_gaps=97, cpu_run_s=0.35, cpu_hit=0.16, cpu_others=1.6, cpu_steal=0.0,
                             cpu_waiting=3.0, load_avg=9.5)
    r["verdict"]["config_changes"] = ['precision ["fp16"] -> ["fp32"]']
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_an_update_document_with_results_not_written_is_valid(schema: dict, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test() + "\n\ndef test_fails(trt_bench):\n"
                                                "    trt_bench.measure(lambda: sum(range(300)))\n    assert False\n")
    pytester.runpytest(*QUICK, "--trt-baseline=update", "--trt-json=u.json").assert_outcomes(passed=1, failed=1)
    doc = json.loads((pytester.path / "u.json").read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["session"]["baselines_not_written"] == [{"id": "test_perf.py::test_fails", "reason": "its test failed"}]
    assert {r["id"]: r["verdict"]["status"] for r in doc["results"]} == {"test_perf.py::test_spin": "updated",
                                                                         "test_perf.py::test_fails": "not_written"}
    del doc["session"]["baselines_not_written"]  # documents written before the field stay valid
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("mutate", [
    lambda d: d["session"].__setitem__("baselines_not_written", ["test_perf.py::test_spin"]),
    lambda d: d["session"].__setitem__("baselines_not_written", [{"id": "t.py::test_x"}]),
    lambda d: d["session"].__setitem__("baselines_not_written", [{"id": "t.py::test_x", "reason": "r", "x": 1}]),
    lambda d: d.__setitem__("schema_version", 1),  # version 1's schema is its own (test_json_versions.py)
    lambda d: d["results"][0].__setitem__("surprise", 1),
    lambda d: d["results"][0]["latency_ms"].pop("median"),
    lambda d: d["results"][0]["verdict"].__setitem__("status", "maybe"),
    lambda d: d["results"][0].__setitem__("location", ["x.py", "12"]),
    lambda d: d["results"][0]["device_state"].__setitem__("timeline", [[0.0, 1.0]]),
    lambda d: d["session"].__setitem__("baseline_mode", "sometimes"),
    lambda d: d["results"][0]["verdict"].__setitem__("decided_by", "luck"),
    lambda d: d["results"][0]["verdict"]["run_noise"].__setitem__("source", "guess"),
    lambda d: d["results"][0]["verdict"]["run_noise"].pop("allowance"),
    lambda d: d["results"][0]["device_state"].__setitem__("cpu_hit", 1.5),
    lambda d: d["results"][0]["device_state"].__setitem__("other_processes", [4242]),
    lambda d: d["results"][0]["memory"].__setitem__("host_peak_bytes", -1),
    lambda d: d["results"][0]["memory"].__setitem__("host_peak_bytes", 1.5),
    lambda d: d["results"][0]["memory_verdict"].__setitem__("status", "bloated"),
    lambda d: d["results"][0]["memory_verdict"]["changes"][0].__setitem__("figure", "plan_bytes"),
    lambda d: _relative(d).pop("a"),
    lambda d: _relative(d).__setitem__("origin", "guess"),
    lambda d: _relative(d)["b"].__setitem__("extra", 1),
    lambda d: [r.pop("relative") for r in d["results"]],
])
def test_schema_rejects_malformed_documents(schema: dict, document: dict, mutate) -> None:
    doc = copy.deepcopy(document)
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def _relative(doc: dict) -> dict:
    return next(r["relative"] for r in doc["results"] if r["relative"] is not None)


def test_schema_is_package_data_and_printed_by_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "pytest-trtperf --trt-json document"
