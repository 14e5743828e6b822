"""--trt-ab-confirm without a GPU: the baseline's model is taken from a real
git repository (``git show``), built for real with TensorRT-RTX through the
engine cache with the current configuration, and the step's verdict is made
from a real interleaved measurement. Running a TensorRT engine needs a GPU,
so the timed sides here are host workloads that stand for the two engines
(slower or not); tests/trt/test_ab_confirm_gpu.py runs the engines themselves
(FakeTensorRT at the execution boundary, real CUDA)."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pytest_trtperf.relative.ab_confirm import AbConfirm, Unavailable, baseline_model
from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.core.config import MeasureOptions, Settings, TrtOptions
from pytest_trtperf.core.fingerprint import slug
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.trt.spec import EngineSpec
from pytest_trtperf.workloads.host import HostWorkload
from tests.gitrepo import commit_all, git, init

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

DATA = memoryview(b"\x5a" * 2_000_000)
FAST = dict(warmup_s=0.05, min_time_s=0.3, max_time_s=2.0)
SHAPES = {"input": (4, 64)}


def hasher(nbytes: int) -> HostWorkload:
    chunk = DATA[:nbytes]
    return HostWorkload(lambda: hashlib.sha256(chunk).digest())


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Any]:
    """mlp.onnx committed twice (other weights, same configuration)."""
    from tests import onnx_models

    r = init(tmp_path / "repo")
    onnx_models.mlp(r / "models" / "mlp.onnx", seed=0)
    v1 = (r / "models" / "mlp.onnx").read_bytes()
    c1 = commit_all(r, "model v1")
    onnx_models.mlp(r / "models" / "mlp.onnx", seed=1)
    c2 = commit_all(r, "model v2")
    return dict(root=r, c1=c1, c2=c2, v1=v1, spec=EngineSpec.create("test_m.py::test_mlp", r, onnx="models/mlp.onnx",
                                                                     shapes=SHAPES))


def runner(tmp_path: Path, mode: str) -> Runner:
    s = Settings(baseline_mode=mode, baseline_dir=tmp_path / ".trtperf", rootdir=tmp_path, require_gpu=False,
                 json_path=None, report_path=None)
    return Runner(s, BaselineStore(s.baseline_dir))


def baseline_of(tmp_path: Path, workload: HostWorkload, commit: str | None) -> None:
    """Measure ``workload`` and commit it as the baseline of TARGET, at ``commit``."""
    r = runner(tmp_path, "update")
    result = r.run(workload, TARGET, MeasureOptions(**FAST))
    r.store.write([result], timestamp="2026-11-29T00:00:00+00:00", git_commit=commit)


TARGET = Target(id="test_m.py::test_mlp", nodeid="test_m.py::test_mlp", name=None)


def test_unavailable_models_say_why(repo: dict[str, Any], tmp_path: Path) -> None:
    baseline_of(tmp_path, hasher(50_000), repo["c1"])
    entry = runner(tmp_path, "compare").store.lookup(host_class(tmp_path), TARGET.id)
    assert entry is not None and entry.git_commit == repo["c1"]
    onnx = repo["spec"].onnx
    fp = {"info": dict(entry.fingerprint.info)}
    data, commit = baseline_model(onnx, entry, fp)
    assert data == repo["v1"] and commit == repo["c1"]
    with pytest.raises(Unavailable, match="loads a plan file"):
        baseline_model(None, entry, fp)
    with pytest.raises(Unavailable, match=r"^the baseline in x.json names no commit \(it was written outside a git "
                                          r"checkout\)$"):
        baseline_model(onnx, dataclasses.replace(entry, git_commit=None), fp, "x.json")
    then = dataclasses.replace(entry, fingerprint=dataclasses.replace(
        entry.fingerprint, info={"trt": "1.6.0.0", "trt_backend": "tensorrt_rtx"}))
    with pytest.raises(Unavailable, match=r"^the baseline was measured with tensorrt_rtx 1.6.0.0 and this run uses "
                                          r"tensorrt_rtx 1.7.1.116: its engine cannot be rebuilt as it was$"):
        baseline_model(onnx, then, {"info": {"trt": "1.7.1.116", "trt_backend": "tensorrt_rtx"}})


def host_class(tmp_path: Path) -> str:
    from pytest_trtperf.core.fingerprint import host_fingerprint

    return host_fingerprint().device_class


def test_the_old_model_builds_with_the_same_configuration_through_the_cache(rtx, repo: dict[str, Any],
                                                                            tmp_path: Path) -> None:
    options = TrtOptions.from_values(backend="tensorrt_rtx", engine_cache=str(tmp_path / "engines"))
    from pytest_trtperf.trt.api import get_engine

    current = get_engine(repo["spec"], options)
    scratch_before = set(Path(tempfile.gettempdir()).glob("trtperf-ab-*"))
    step = AbConfirm(runner=runner(tmp_path, "compare"), spec=repo["spec"], trt_options=options,
                     make_workload=lambda h: h)
    old = step._build(repo["v1"], repo["c1"])
    assert not old.cache_hit
    assert old.identity["onnx_sha256"] == hashlib.sha256(repo["v1"]).hexdigest()[:16]
    assert old.identity["onnx_sha256"] != current.identity["onnx_sha256"]  # the other model...
    assert old.identity["build"] == current.identity["build"]  # ...built the same way
    assert old.identity["source"] == current.identity["source"] == "mlp.onnx"
    assert [t.to_dict() for t in old.io] == [t.to_dict() for t in current.io]
    again = step._build(repo["v1"], repo["c1"])
    assert again.cache_hit and again.plan == old.plan  # built once per machine type, like any engine
    assert set(Path(tempfile.gettempdir()).glob("trtperf-ab-*")) == scratch_before  # scratch copy removed
    assert git(repo["root"], "status", "--porcelain") == ""  # no checkout, nothing touched


def test_a_model_that_does_not_build_at_that_commit(rtx, repo: dict[str, Any], tmp_path: Path) -> None:
    options = TrtOptions.from_values(backend="tensorrt_rtx", engine_cache="off")
    step = AbConfirm(runner=runner(tmp_path, "compare"), spec=repo["spec"], trt_options=options,
                     make_workload=lambda h: h)
    with pytest.raises(Unavailable, match=rf"^the model at commit {repo['c1'][:12]} does not build here: "
                                          r"test_m.py::test_mlp \(model at \w+\): TensorRT-RTX [\d.]+ could not parse"):
        step._build(b"not an onnx model", repo["c1"])


def run_with_check(tmp_path: Path, repo: dict[str, Any], current: HostWorkload, old_nbytes: int,
                   **opts: Any) -> Any:
    """Runner.run in compare mode with the AbConfirm hook; the old engine's
    workload stands in as a host workload of ``old_nbytes``."""
    options = TrtOptions.from_values(backend="tensorrt_rtx", engine_cache=str(tmp_path / "engines"))
    built: list[Any] = []

    def make_workload(handle: Any) -> HostWorkload:
        built.append(handle)
        return hasher(old_nbytes)

    r = runner(tmp_path, "compare")
    step = AbConfirm(runner=r, spec=repo["spec"], trt_options=options, make_workload=make_workload)
    result = r.run(current, TARGET, MeasureOptions(**FAST, tolerance=0.05, **opts), regression_check=step)
    return result, built


def test_a_confirmed_regression_rests_on_the_paired_ratio(rtx, repo: dict[str, Any], tmp_path: Path) -> None:
    baseline_of(tmp_path, hasher(50_000), repo["c1"])
    result, built = run_with_check(tmp_path, repo, hasher(100_000), 50_000, ab_confirm=True)
    (old,) = built  # the model of c1, really built
    assert old.identity["onnx_sha256"] == hashlib.sha256(repo["v1"]).hexdigest()[:16]
    v, rel = result.verdict, result.relative
    assert v.status == "regression" and rel is not None and rel.origin == "ab_confirm" and rel.commit == repo["c1"]
    assert 1.6 < rel.ratio < 2.4 and rel.ci[0] > 1.05 and v.change == pytest.approx(rel.ratio - 1)
    assert v.message.startswith("median latency regressed +")  # the cause first, as every verdict
    assert f" in A/B against the model at commit {repo['c1'][:12]}, measured interleaved (b/a " in v.message
    assert TARGET.id not in v.message
    assert "tolerance 5.0%; the baseline file said +" in v.message and "\n" not in v.message
    assert rel.a.label == f"mlp.onnx at {repo['c1'][:12]}" and rel.b.label == "mlp.onnx"


def test_a_regression_the_paired_ratio_does_not_confirm_passes(rtx, repo: dict[str, Any], tmp_path: Path) -> None:
    # The baseline was taken on a fast day: against the file, today reads as a
    # regression; the baseline's own model, measured next to today's, is as slow.
    baseline_of(tmp_path, hasher(50_000), repo["c1"])
    result, built = run_with_check(tmp_path, repo, hasher(100_000), 100_000, ab_confirm=True)
    assert len(built) == 1
    v = result.verdict
    assert v.status == "pass" and result.relative is not None and abs(result.relative.ratio - 1) < 0.03
    assert v.message.startswith("not a regression beyond 5.0% in A/B against the model at commit ")
    assert "; the baseline file said +" in v.message
    assert "which the paired measurement does not confirm" in v.message


def test_off_or_unavailable_leaves_the_baseline_verdict(rtx, repo: dict[str, Any], tmp_path: Path) -> None:
    baseline_of(tmp_path, hasher(50_000), None)  # written outside git: no commit
    result, built = run_with_check(tmp_path, repo, hasher(100_000), 50_000, ab_confirm=True)
    assert built == [] and result.relative is None and result.verdict.status == "regression"
    assert result.verdict.message.endswith("; A/B confirm not possible: the baseline in "
                                           f"{tmp_path / '.trtperf'}/{slug(result.device_class)}"
                                           ".json names no commit (it was written outside a git checkout)")
    off, built = run_with_check(tmp_path, repo, hasher(100_000), 50_000, ab_confirm=False)
    assert built == [] and off.relative is None and "A/B" not in off.verdict.message


def test_the_runner_asks_the_hook_only_about_regressions(tmp_path: Path) -> None:
    baseline_of(tmp_path, hasher(50_000), None)
    calls: list[str] = []

    def check(workload: Any, result: Any, verdict: Any, opts: Any) -> Any:
        calls.append(verdict.status)
        return None  # keep the verdict

    r = runner(tmp_path, "compare")
    same = r.run(hasher(50_000), TARGET, MeasureOptions(**FAST, tolerance=0.5), regression_check=check)
    assert same.verdict.status == "pass" and calls == []
    slow = r.run(hasher(100_000), TARGET, MeasureOptions(**FAST), regression_check=check)
    assert slow.verdict.status == "regression" and slow.verdict.remeasured and calls == ["regression"]


WIRING = '''
from pathlib import Path

import pytest

from pytest_trtperf.core.config import MeasureOptions

ON = MeasureOptions(ab_confirm=True)


@pytest.mark.trt_engine(onnx="mlp.onnx", shapes={"input": (4, 64)}, optimization_level=0)
def test_marker(trt_bench):
    with pytest.raises(pytest.skip.Exception):  # built; the run needs a GPU
        trt_bench(ab_confirm=True)
    ((engine, spec),) = trt_bench._specs
    check = trt_bench._ab_check(engine, None, None, ON)
    assert check.spec is spec and spec.onnx == Path("mlp.onnx").resolve() and spec.optimization_level == 0
    assert trt_bench._ab_check(engine, None, None, MeasureOptions()) is None


def test_engine(trt_bench):
    engine = trt_bench.engine("mlp.onnx", shapes={"input": (2, 64)})
    check = trt_bench._ab_check(engine, {"input": (2, 64)}, None, ON)
    assert check.spec.onnx == Path("mlp.onnx").resolve() and check.spec.shapes == {"input": (2, 64)}
    assert check.trt_options.engine_cache == Path(".trtperf/engines").resolve()
    old = check.make_workload(engine)  # the old engine is run exactly like the current one
    assert old.shapes == {"input": (2, 64)} and old.identity()["mode"] == "latency"
    assert trt_bench._ab_check(lambda: None, None, None, ON) is None  # not an engine built here
'''


def test_the_fixture_hands_the_step_the_engines_own_spec(pytester: pytest.Pytester, rtx, models: Path) -> None:
    shutil.copy(models / "mlp.onnx", pytester.path / "mlp.onnx")
    pytester.makepyfile(test_wiring=WIRING)
    pytester.runpytest("-p", "no:cacheprovider", "--trt-baseline=off").assert_outcomes(passed=2)
