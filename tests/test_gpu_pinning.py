"""One xdist worker per GPU: real xdist workers under pytester, FakeNVML GPUs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_trtperf.gpu import pinning as gpu_pinning, nvml
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.gpu.pinning import VisibleGpu, assign, check_worker_count, parse_visible

pytest_plugins = ["pytester"]

from helpers import FAKE_NVML as FAKE, GPU_PLUGIN_WIRING as WIRING, REPO, run_inner


#: Every worker runs this (``--dist each``) and reports what it sees.
REPORT_TEST = """
import json, os
from pytest_trtperf.gpu import session as gpu_plugin

def test_report(request):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    monitor = gpu_plugin.get(request.config).make_monitor(0.005)
    monitor.start()
    state = monitor.stop()
    out = os.path.join(os.environ["OUT_DIR"], worker + ".json")
    with open(out, "w") as f:
        json.dump({"cvd": os.environ.get("CUDA_VISIBLE_DEVICES"), "power": state.power_w_median}, f)
"""

#: Records each "measured window" under the plugin's measurement lock.
SHARING_TEST = """
import json, os, time
import pytest
from pytest_trtperf.gpu import session as gpu_plugin

@pytest.mark.parametrize("i", range(6))
def test_window(request, i):
    plugin = gpu_plugin.get(request.config)
    with plugin.measurement_lock():
        start = time.time()
        time.sleep(0.15)
        end = time.time()
    out = os.path.join(os.environ["OUT_DIR"], f"{os.getpid()}-{i}.json")
    with open(out, "w") as f:
        json.dump({"gpu": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": end}, f)
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """FakeNVML with four GPUs drawing 100, 110, 120, 130 W (to tell them apart)."""
    state = tmp_path / "nvml-state.json"
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv(nvml.ENV_MODULE, str(FAKE))
    monkeypatch.setenv("TRTPERF_FAKE_NVML_STATE", str(state))
    monkeypatch.setenv("OUT_DIR", str(out))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for var in ("CUDA_VISIBLE_DEVICES", "PYTEST_XDIST_AUTO_NUM_WORKERS", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(var, raising=False)
    nvml.reset_module()
    mod = nvml.module()
    mod.write_state(state, [mod.make_gpu(i, power_mw=100_000 + 10_000 * i) for i in range(4)])
    yield mod, state, out
    nvml.reset_module()


def uuid(mod, i: int) -> str:
    return mod.make_gpu(i)["uuid"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeconftest(WIRING)
    return run_inner(pytester, *args, opts=("-p", "no:trtperf", "-p", "no:cacheprovider"), subprocess=True,
                     timeout=240)


def reports(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


# ---- units ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, entries",
    [
        ("0,1", ["0", "1"]),
        ("GPU-abc, 2", ["GPU-abc", "2"]),
        ("", []),
        ("-1", []),
        ("0,x,1", ["0"]),  # CUDA stops at the first invalid entry
        ("MIG-1234", ["MIG-1234"]),
    ],
)
def test_parse_visible(text, entries) -> None:
    assert parse_visible(text) == entries


def test_assign_round_robin() -> None:
    gpus = [VisibleGpu("GPU-a", None, ""), VisibleGpu("GPU-b", None, "")]
    assert [assign(f"gw{k}", gpus).cuda_id for k in range(3)] == ["GPU-a", "GPU-b", "GPU-a"]
    with pytest.raises(ValueError):
        assign("master", gpus)


@pytest.mark.parametrize(
    "workers, gpus, mode, sharing, ok",
    [
        (2, 2, "compare", False, True),
        (3, 2, "compare", False, False),
        (3, 2, "update", False, False),
        (3, 2, "off", False, True),
        (3, 2, "compare", True, True),
        (4, 0, "compare", False, True),  # no GPU: host-only run, nothing to pin
    ],
)
def test_worker_count_rule(workers, gpus, mode, sharing, ok) -> None:
    if ok:
        check_worker_count(workers, gpus, mode, sharing)
    else:
        with pytest.raises(UsageError) as info:
            check_worker_count(workers, gpus, mode, sharing)
        msg = str(info.value)
        assert f"-n {gpus}" in msg and "--trt-allow-gpu-sharing" in msg and "\n" not in msg


def test_visible_gpus_respects_callers_set_and_uuid_prefix(fake, monkeypatch) -> None:
    mod, _, _ = fake
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{uuid(mod, 3)},{uuid(mod, 1)[:14]}")
    with nvml.session():
        gpus = gpu_pinning.visible_gpus()
    assert [g.cuda_id for g in gpus] == [uuid(mod, 3), uuid(mod, 1)]
    assert gpus[0].pci_bus_id == mod.make_gpu(3)["pci_bus_id"]


def test_gpu_lock_is_exclusive_across_processes(tmp_path) -> None:
    import subprocess
    import sys

    lock = gpu_pinning.GpuLock(tmp_path, "GPU-x")
    code = (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
        "except BlockingIOError:\n    print('held')\n"
    )
    with lock.hold():
        with lock.hold():  # reentrant
            held = subprocess.run([sys.executable, "-c", code, str(lock.path)], capture_output=True, text=True)
    free = subprocess.run([sys.executable, "-c", code, str(lock.path)], capture_output=True, text=True)
    assert (held.stdout.strip(), free.stdout.strip()) == ("held", "free")


# ---- real xdist workers ---------------------------------------------------------
def test_two_workers_two_gpus_each_pinned_to_its_own(pytester, fake, monkeypatch) -> None:
    mod, state, out = fake
    mod.write_state(state, [mod.make_gpu(i, power_mw=100_000 + 10_000 * i) for i in range(2)])
    pytester.makepyfile(REPORT_TEST)
    result = run(pytester, "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2)
    seen = reports(out)
    assert {w: r["cvd"] for w, r in seen.items()} == {"gw0": uuid(mod, 0), "gw1": uuid(mod, 1)}
    # the sampler in each worker reads its own GPU, not NVML index 0
    assert {w: r["power"] for w, r in seen.items()} == {"gw0": 100.0, "gw1": 110.0}


def test_three_workers_on_callers_visible_subset_of_four(pytester, fake, monkeypatch) -> None:
    mod, _, out = fake
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{uuid(mod, 3)},{uuid(mod, 1)},{uuid(mod, 2)}")
    pytester.makepyfile(REPORT_TEST)
    result = run(pytester, "-n", "3", "--dist", "each")
    result.assert_outcomes(passed=3)
    seen = reports(out)
    assert {w: r["cvd"] for w, r in seen.items()} == {"gw0": uuid(mod, 3), "gw1": uuid(mod, 1), "gw2": uuid(mod, 2)}
    assert {w: r["power"] for w, r in seen.items()} == {"gw0": 130.0, "gw1": 110.0, "gw2": 120.0}
    assert "trtperf GPU pinning (one per worker)" in result.stdout.str()


def test_n_auto_is_one_worker_per_visible_gpu(pytester, fake, monkeypatch) -> None:
    mod, _, out = fake
    pytester.makepyfile(REPORT_TEST)
    result = run(pytester, "-n", "auto", "--dist", "each")
    result.assert_outcomes(passed=4)
    assert sorted(r["cvd"] for r in reports(out).values()) == sorted(uuid(mod, i) for i in range(4))


def test_n_auto_follows_cuda_visible_devices(pytester, fake, monkeypatch) -> None:
    mod, _, out = fake
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{uuid(mod, 2)},{uuid(mod, 0)}")
    pytester.makepyfile(REPORT_TEST)
    run(pytester, "-n", "auto", "--dist", "each").assert_outcomes(passed=2)
    assert {w: r["cvd"] for w, r in reports(out).items()} == {"gw0": uuid(mod, 2), "gw1": uuid(mod, 0)}


def test_more_workers_than_gpus_is_a_usage_error(pytester, fake) -> None:
    mod, state, _ = fake
    mod.write_state(state, [mod.make_gpu(0), mod.make_gpu(1)])
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = run(pytester, "-n", "3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = [l for l in result.errlines if "visible GPU" in l]
    assert len(line) == 1 and "-n 2" in line[0] and "--trt-allow-gpu-sharing" in line[0]


def test_sharing_serialises_measured_windows_per_gpu(pytester, fake) -> None:
    mod, state, out = fake
    mod.write_state(state, [mod.make_gpu(0), mod.make_gpu(1)])
    pytester.makepyfile(SHARING_TEST)
    result = run(pytester, "-n", "4", "--trt-allow-gpu-sharing")
    result.assert_outcomes(passed=6)
    assert "shared, serialised" in result.stdout.str()
    windows: dict[str, list[tuple[float, float]]] = {}
    for r in reports(out).values():
        windows.setdefault(r["gpu"], []).append((r["start"], r["end"]))
    assert set(windows) <= {uuid(mod, 0), uuid(mod, 1)}
    for spans in windows.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"overlapping windows on one GPU: {spans}"


def test_sibling_workers_on_a_shared_gpu_are_not_busy(pytester, fake) -> None:
    """Workers sharing a GPU hold contexts on it; they are ours, not 'busy'."""
    mod, state, out = fake
    mod.write_state(state, [mod.make_gpu(0)])
    pytester.makepyfile(
        """
import json, os, time
from pytest_trtperf.gpu import session as gpu_plugin

def barrier(name):
    # both workers stay alive (registered) until both got here
    out = os.environ["OUT_DIR"]
    open(os.path.join(out, f"{name}-{os.getpid()}.flag"), "w").close()
    deadline = time.time() + 60
    while len([f for f in os.listdir(out) if f.startswith(name)]) < 2 and time.time() < deadline:
        time.sleep(0.02)

def test_busy(request):
    path = os.environ["TRTPERF_FAKE_NVML_STATE"]
    plugin = gpu_plugin.get(request.config)
    barrier("before")
    with plugin.measurement_lock():
        # NVML lists both workers: each holds a context on the shared GPU
        pids = sorted(int(p) for p in os.listdir(plugin.settings.state_dir / ("gpu-" + os.environ["CUDA_VISIBLE_DEVICES"] + ".pids")))
        data = json.load(open(path))
        data["gpus"][0]["processes"] = [{"pid": p} for p in pids]
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)
        m = plugin.make_monitor(0.005)
        m.start()
        flags = m.stop().flags
    with open(os.path.join(os.environ["OUT_DIR"], str(os.getpid()) + ".json"), "w") as f:
        json.dump({"flags": list(flags), "pids": pids}, f)
    barrier("after")
"""
    )
    result = run(pytester, "-n", "2", "--dist", "each", "--trt-allow-gpu-sharing")
    result.assert_outcomes(passed=2)
    seen = list(reports(out).values())
    assert len(seen) == 2 and all(len(r["pids"]) == 2 and r["flags"] == [] for r in seen), seen


def test_without_nvml_workers_run_unpinned(pytester, fake, monkeypatch) -> None:
    _, _, out = fake
    monkeypatch.setenv(nvml.ENV_MODULE, "no_such_nvml_module_xyz")
    pytester.makepyfile(
        """
import json, os
def test_env():
    with open(os.path.join(os.environ["OUT_DIR"], os.environ["PYTEST_XDIST_WORKER"] + ".json"), "w") as f:
        json.dump({"cvd": os.environ.get("CUDA_VISIBLE_DEVICES")}, f)
"""
    )
    result = run(pytester, "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2)
    assert all(r["cvd"] is None for r in reports(out).values())
    # A session that uses no GPU hears nothing about NVML (issue 26); one whose GPU test skipped does.
    assert "GPU pinning" not in result.stdout.str() and "NVML" not in result.stdout.str()
    (pytester.path / "conftest.py").unlink()  # the whole plugin this time: a GPU test that skips here
    pytester.makepyfile(test_gpu="def test_gpu(trt_bench):\n    trt_bench.measure(lambda s: None, timer='cuda')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "test_gpu.py", timeout=240)
    assert "trtperf GPU pinning: off" in result.stdout.str(), result.stdout.str()


def test_no_xdist_leaves_environment_alone(pytester, fake) -> None:
    _, _, out = fake
    pytester.makepyfile(
        """
import json, os
def test_env():
    with open(os.path.join(os.environ["OUT_DIR"], "main.json"), "w") as f:
        json.dump({"cvd": os.environ.get("CUDA_VISIBLE_DEVICES")}, f)
"""
    )
    run(pytester).assert_outcomes(passed=1)
    assert reports(out) == {"main": {"cvd": None}}
