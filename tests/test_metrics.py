"""Every gated metric, defined once (core/metrics.py): directions, readers and
formats checked against real results, baseline entries and history rows."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core import metrics, stats, units
from pytest_trtperf.core.fingerprint import gpu_fingerprint
from pytest_trtperf.core.results import DeviceState, Result


def result(scale: float = 1.0, *, seed: int = 0, memory: dict[str, int] | None = None) -> Result:
    x = np.random.default_rng(seed).lognormal(0.0, 0.2, 2000) * scale * 1e-3
    fp = gpu_fingerprint(kind="cuda", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0",
                         trt_version=None, clocks="off", info={})
    return Result(id="t.py::test_x", nodeid="t.py::test_x", name=None, kind="cuda", mode="latency",
                  latency=stats.summarize(x), throughput=1 / x.mean(), distribution=stats.compress(x),
                  stop_reason="converged", warmup_iterations=5, warmup_s=0.2, measured_s=1.0, config_hash="c",
                  identity={}, fingerprint=fp.to_dict(), device_class=fp.device_class,
                  device_state=DeviceState(kind="cuda"), memory=memory or {})


def test_the_registry_names_every_gated_metric_once() -> None:
    assert metrics.timing_names() == ("median", "mean", "p90", "p95", "p99", "throughput")
    assert metrics.memory_names() == ("host_peak_bytes", "device_peak_bytes")
    every = [m.name for m in (*metrics.TIMING, *metrics.MEMORY)]
    assert len(every) == len(set(every))


@pytest.mark.parametrize("m", metrics.TIMING, ids=lambda m: m.name)
def test_time_metrics_read_the_same_value_from_a_result_its_entry_and_its_history_row(m: metrics.Metric) -> None:
    r = result()
    entry = BaselineEntry.from_result(r, timestamp="T", git_commit=None)
    value = m.read(r)
    assert value > 0 and value == r.metric_value(m.name)
    assert m.read(entry) == pytest.approx(value, rel=1e-12)
    assert m.read_row(entry.runs()[-1]) == pytest.approx(value, rel=1e-12)


def test_readers_follow_the_samples() -> None:
    """Each reader picks its own statistic: the percentiles are ordered, the
    mean of a right-skewed series is above its median, and the rate is the
    inverse of the mean time."""
    r = result()
    by = {m.name: m.read(r) for m in metrics.TIMING}
    assert by["median"] < by["p90"] < by["p95"] < by["p99"]
    assert by["mean"] > by["median"]
    assert by["throughput"] == pytest.approx(1000.0 / by["mean"], rel=1e-6)


@pytest.mark.parametrize("m", [*metrics.TIMING, *metrics.MEMORY], ids=lambda m: m.name)
def test_direction_a_worse_value_is_a_positive_change(m: metrics.Metric) -> None:
    slow, fast = result(1.25, seed=1, memory={"host_peak_bytes": 2000, "device_peak_bytes": 2000}), \
        result(1.0, memory={"host_peak_bytes": 1000, "device_peak_bytes": 1000})
    before, after = m.read(fast), m.read(slow)
    assert m.change(after, before) > 0.1 and m.change(before, after) < -0.1
    assert m.slowdown(after, before) == pytest.approx(m.change(after, before) + 1.0)
    assert m.lower_is_better == (after > before)


def test_kinds_and_words() -> None:
    assert {m.name: (m.unit, m.lower_is_better) for m in metrics.TIMING}["throughput"] == (metrics.RATE, False)
    assert all(m.unit == metrics.TIME and m.lower_is_better for m in metrics.TIMING if m.name != "throughput")
    assert all(m.unit == metrics.BYTES and m.lower_is_better for m in metrics.MEMORY)
    assert metrics.words("p99") == "p99 latency" and metrics.words("throughput") == "throughput"
    assert metrics.timing("throughput").paired_words == "time per inference"
    assert metrics.timing("p95").paired_words == "p95 latency"
    assert metrics.words("nonsense") == "nonsense"
    assert [m.short for m in metrics.MEMORY] == ["host memory", "device memory"]
    assert metrics.timing("throughput").stat == "mean" and metrics.timing("p90").stat == "p90"


def test_formats() -> None:
    r = result(memory={"host_peak_bytes": 3 * 1024 * 1024})
    assert metrics.fmt_value("throughput", 1234.56) == "1,234.6/s"
    assert metrics.fmt_value("median", 0.00009) == "90.00 ns"
    assert metrics.fmt_value("p99", 1.5, units.choose([1.0])) == units.choose([1.0]).fmt(1.5)
    host = metrics.MEMORY[0]
    assert host.fmt(host.read(r)) == "3.0 MiB" and metrics.fmt_value("host_peak_bytes", 512) == "512 B"
    assert metrics.MEMORY[1].read(r) is None
    for bad in (None, float("nan"), "1"):
        assert metrics.fmt_value("median", bad) == "-"  # type: ignore[arg-type]


def test_an_unknown_name_reads_as_a_time_statistic_of_that_name() -> None:
    """A verdict read from a file may name a metric this version lacks: it is
    written as a time and read as ``latency.<name>`` (AttributeError for a
    statistic the series lacks; reports show ``-``)."""
    r = result()
    assert metrics.timing("min").read(r) == r.latency.min
    with pytest.raises(AttributeError):
        metrics.timing("p42").read(r)


def test_serve_figures_are_judged_as_registry_metrics() -> None:
    """A serve measurement's two figures (load/metrics.py) are time-gate
    metrics: the SLO's percentile, and the rate metric for the sustainable rate."""
    from pytest_trtperf.core.serve_summary import Slo
    from pytest_trtperf.load.metrics import latency_figure, sustainable_figure

    assert metrics.percentile_metric("p50") == "median" and metrics.percentile_metric("p95") == "p95"
    assert metrics.percentile_metric("p999") == "p999"
    slo = Slo.parse("p50<20ms")
    lat, rate = latency_figure(slo, 200.0), sustainable_figure(slo)
    assert (lat.gate_metric, lat.higher_is_better, lat.words) == ("median", False, "p50 latency at 200/s")
    assert (rate.gate_metric, rate.higher_is_better) == ("throughput", True)
    assert latency_figure(None, 5.0).gate_metric == "p99"


# -- adding a metric is one definition ----------------------------------------------

def _enums(node: object, key: str) -> list[list[str]]:
    """Every ``{key: {"enum": [...]}}`` in a JSON schema."""
    out: list[list[str]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, dict) and "enum" in v:
                out.append(list(v["enum"]))
            out += _enums(v, key)
    elif isinstance(node, list):
        for v in node:
            out += _enums(v, key)
    return out


def test_the_json_schemas_name_the_registry_metrics() -> None:
    """The packaged schemas are static files: a metric added to the registry
    must be added to them too, and this test says where."""
    from pytest_trtperf.report.document import SCHEMA_FILES, schema_text

    for version in SCHEMA_FILES:
        schema = json.loads(schema_text(version))
        found = _enums(schema, "metric")
        assert found and all(e == list(metrics.timing_names()) for e in found), (version, found)
        series = schema["$defs"]["series"]["properties"]
        assert all(m.name in series for m in metrics.TIMING if m.unit == metrics.TIME), version
    figures = _enums(json.loads(schema_text()), "figure")
    assert figures == [list(metrics.memory_names())]


#: A metric name compared with a string (``metric == "throughput"``,
#: ``metric in ("mean", ...)``) or a word table keyed by metric names.
_NAME_BRANCH = re.compile(r"""\bmetric\w*\s*(==|!=|\bin\b|\bnot in\b)\s*[("']|_METRIC_WORDS|_QUANTILE\w*\s*=\s*\{""")


def test_no_module_but_the_registry_branches_on_a_metric_name() -> None:
    """What a metric is (words, direction, unit, statistic) lives in
    core/metrics.py only: everything else looks it up."""
    root = Path(metrics.__file__).parents[1]
    found = [f"{p.relative_to(root)}:{n}: {line.strip()}"
             for p in sorted(root.rglob("*.py")) if p.name != "metrics.py" or p.parent.name != "core"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if _NAME_BRANCH.search(line.split("#")[0])]
    assert found == []


def test_the_name_branch_check_sees_a_branch() -> None:
    assert _NAME_BRANCH.search('    if metric == "throughput":')
    assert _NAME_BRANCH.search('stat = "mean" if metric in ("mean", "throughput") else metric')
    assert not _NAME_BRANCH.search('    if mode != "throughput":')


@pytest.fixture
def max_latency(monkeypatch: pytest.MonkeyPatch) -> metrics.TimeMetric:
    """A throwaway time metric: the slowest call, registered by one definition."""
    m = metrics.TimeMetric("max", "max latency", percentile=100.0)
    monkeypatch.setattr(metrics, "TIMING", (*metrics.TIMING, m))
    return m


def test_a_new_time_metric_is_gated_recorded_and_reported(max_latency: metrics.TimeMetric) -> None:
    from pytest_trtperf.gate.timing import judge
    from pytest_trtperf.report import csv_export, terminal

    base, cur = result(), result(1.5, seed=1)
    entry = BaselineEntry.from_result(base, timestamp="T", git_commit=None)
    assert entry.runs()[-1]["max"] == base.latency.max  # the history keeps it
    v = judge(cur, entry, baseline_mode="compare", metric="max", tolerance=0.05, confidence=0.99,
              baseline_path="b.json")
    assert v.status == "regression" and v.message.startswith("max latency regressed +")
    assert (v.baseline_value, v.current_value) == (base.latency.max, cur.latency.max)
    judged = dataclasses.replace(cur, verdict=v)
    metric, before, after = terminal.compared_cells(judged)
    assert (metric, before, after) == ("max", metrics.fmt_value("max", base.latency.max),
                                       metrics.fmt_value("max", cur.latency.max))
    cells = dict(zip(csv_export.COLUMNS, csv_export.row(judged), strict=True))
    assert cells["metric"] == "max" and float(cells["current"]) == pytest.approx(cur.latency.max, rel=1e-5)
    assert float(cells["baseline"]) == pytest.approx(base.latency.max, rel=1e-5)


def test_a_new_memory_figure_is_gated(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_trtperf.gate.memory import judge_memory

    scratch = metrics.BytesMetric("scratch_bytes", "scratch memory", label="scratch")
    monkeypatch.setattr(metrics, "MEMORY", (*metrics.MEMORY, scratch))
    entry = BaselineEntry.from_result(result(memory={"scratch_bytes": 1 << 20}), timestamp="T", git_commit=None)
    v = judge_memory({"scratch_bytes": 4 << 20}, entry, None, baseline_mode="compare", tolerance=0.1,
                     baseline_path="b.json")
    assert v is not None and v.status == "regression"
    assert [(c.figure, c.baseline, c.current) for c in v.changes] == [("scratch_bytes", 1 << 20, 4 << 20)]
    assert "1.0 MiB -> 4.0 MiB" in v.message
