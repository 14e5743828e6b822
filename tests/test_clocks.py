"""Clock lock/restore on every way out of a session, against FakeNVML.

FakeNVML keeps its state in a JSON file, so after a pytest subprocess ends (or
is killed) this test can read whether the clocks were reset.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_trtperf.gpu import nvml
from pytest_trtperf.gpu.clocks import ClockController, LockSpec, plan_for, snap
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.gpu.pinning import VisibleGpu

pytest_plugins = ["pytester"]

from helpers import FAKE_NVML as FAKE, GPU_PLUGIN_WIRING as WIRING, REPO, run_inner


#: A test that reports what it sees, then waits to be killed.
SLOW_TEST = """
import json, os, time
from pytest_trtperf.gpu import session as gpu_plugin

def test_slow(request, tmp_path_factory):
    state = json.load(open(os.environ["TRTPERF_FAKE_NVML_STATE"]))
    seen = {
        "locked": [g["locked_sm"] for g in state["gpus"]],
        "clock_state": gpu_plugin.get(request.config).clock_state(),
        "pid": os.getpid(),
    }
    with open(os.environ["READY_FILE"] + "." + str(os.getpid()), "w") as f:
        json.dump(seen, f)
    parent = os.getppid()
    deadline = time.time() + 60
    while time.time() < deadline and os.getppid() == parent:
        time.sleep(0.05)
"""

CHECK_TEST = """
import json, os
from pytest_trtperf.gpu import session as gpu_plugin

def test_sees_lock(request):
    state = json.load(open(os.environ["TRTPERF_FAKE_NVML_STATE"]))
    plugin = gpu_plugin.get(request.config)
    print("CLOCK_STATE", plugin.clock_state())
    assert [g["locked_sm"] for g in state["gpus"]] == __EXPECTED__
    assert plugin.clock_state() == __STATE__
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """FakeNVML with two H100-like GPUs; the env reaches subprocesses too."""
    state = tmp_path / "nvml-state.json"
    monkeypatch.setenv(nvml.ENV_MODULE, str(FAKE))
    monkeypatch.setenv("TRTPERF_FAKE_NVML_STATE", str(state))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    nvml.reset_module()
    mod = nvml.module()
    mod.write_state(state, [mod.make_gpu(0), mod.make_gpu(1)])
    yield mod, state
    nvml.reset_module()


def gpu_state(path: Path) -> list[dict]:
    return json.loads(path.read_text())["gpus"]


def set_gpus(path: Path, **fields: object) -> None:
    data = json.loads(path.read_text())
    for g in data["gpus"]:
        g.update(fields)
    path.write_text(json.dumps(data))


def visible(mod) -> list[VisibleGpu]:
    return [VisibleGpu(mod.make_gpu(i)["uuid"], mod.make_gpu(i)["pci_bus_id"], "H100") for i in range(2)]


#: The installed plugin is blocked: the conftest wires the GPU plugin itself.
run = functools.partial(run_inner, opts=("-p", "no:trtperf", "-p", "no:cacheprovider"), subprocess=True, timeout=180)


# ---- parsing and planning ------------------------------------------------------
@pytest.mark.parametrize("text, value", [(None, "off"), ("off", "off"), ("MAX", "max"), ("base", "base"), ("1410", "1410"), ("1410MHz", "1410")])
def test_lock_spec_parse(text, value) -> None:
    assert LockSpec.parse(text).value == value


@pytest.mark.parametrize("text", ["fast", "-5", "1.5", "max,base"])
def test_lock_spec_rejects_bad_values_in_one_line(text) -> None:
    with pytest.raises(UsageError) as info:
        LockSpec.parse(text)
    msg = str(info.value)
    assert "--trt-lock-clocks" in msg and "off, base, max" in msg and "\n" not in msg


def test_snap_prefers_nearest_then_lower() -> None:
    assert snap(1503, [1980, 1500, 1485]) == 1500
    assert snap(1492, [1500, 1485]) == 1485  # 7 below vs 8 above
    assert snap(5000, [1980, 1500]) == 1980


def test_plan_max_base_mhz_and_memory(fake) -> None:
    mod, _ = fake
    with nvml.session():
        dev = nvml.by_index(0)
        assert plan_for(dev, "g0", LockSpec("max"), LockSpec("off")).state == "sm=1980"
        assert plan_for(dev, "g0", LockSpec("base"), LockSpec("off")).state == "sm=1755"
        plan = plan_for(dev, "g0", LockSpec("1503"), LockSpec("max"))
        assert plan.state == "sm=1500,mem=2619"
        assert len(plan.notes) == 1 and "1503" in plan.notes[0] and "1500" in plan.notes[0]


# ---- the controller in-process --------------------------------------------------
def test_lock_then_restore_resets_every_gpu_and_removes_state_file(fake, tmp_path) -> None:
    mod, path = fake
    ctl = ClockController(tmp_path / "st", LockSpec("max"), LockSpec("max"))
    outcome = ctl.lock(visible(mod))
    assert outcome.state == "sm=1980,mem=2619" and not outcome.failed
    assert [(g["locked_sm"], g["locked_mem"]) for g in gpu_state(path)] == [(1980, 2619)] * 2
    assert ctl.state_file.exists()
    assert ctl.restore() == []
    assert [(g["locked_sm"], g["locked_mem"]) for g in gpu_state(path)] == [(None, None)] * 2
    assert not ctl.state_file.exists()
    assert ctl.restore() == []  # idempotent
    assert (tmp_path / "st" / ".gitignore").read_text().strip() == "*"


def test_off_touches_nothing(fake, tmp_path) -> None:
    mod, path = fake
    ctl = ClockController(tmp_path / "st", LockSpec("off"))
    assert ctl.lock(visible(mod)).state == "off"
    assert json.loads(path.read_text())["log"] == []


@pytest.mark.parametrize("kind", ["no-permission", "not-supported"])
def test_refused_lock_warns_once_and_runs_unlocked(fake, tmp_path, kind) -> None:
    mod, path = fake
    set_gpus(path, permission=kind)
    ctl = ClockController(tmp_path / "st", LockSpec("max"))
    outcome = ctl.lock(visible(mod))
    assert outcome.state == f"failed:{kind}"
    assert outcome.for_gpu(visible(mod)[1].cuda_id) == f"failed:{kind}"
    assert "\n" not in outcome.warning and "continuing with unlocked clocks" in outcome.warning
    if kind == "no-permission":
        assert "root" in outcome.warning and "SYS_ADMIN" in outcome.warning
    assert [g["locked_sm"] for g in gpu_state(path)] == [None, None]
    assert not ctl.state_file.exists()


def test_strict_turns_refusal_into_usage_error(fake, tmp_path) -> None:
    mod, path = fake
    set_gpus(path, permission="no-permission")
    ctl = ClockController(tmp_path / "st", LockSpec("max"), strict=True)
    with pytest.raises(UsageError, match="could not lock GPU clocks.*root.*--trt-lock-clocks-strict"):
        ctl.lock(visible(mod))


def test_failure_on_second_gpu_restores_the_first(fake, tmp_path) -> None:
    mod, path = fake
    data = json.loads(path.read_text())
    data["gpus"][1]["permission"] = "no-permission"
    path.write_text(json.dumps(data))
    ctl = ClockController(tmp_path / "st", LockSpec("max"))
    assert ctl.lock(visible(mod)).state == "failed:no-permission"
    assert [g["locked_sm"] for g in gpu_state(path)] == [None, None]
    calls = [(c["call"], c["gpu"]) for c in json.loads(path.read_text())["log"]]
    assert ("SetGpuLockedClocks", 0) in calls and ("ResetGpuLockedClocks", 0) in calls


def test_without_nvml_lock_fails_softly(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(nvml.ENV_MODULE, "no_such_nvml_module_xyz")
    nvml.reset_module()
    try:
        outcome = ClockController(tmp_path, LockSpec("max")).lock([])
    finally:
        nvml.reset_module()
    assert outcome.state == "failed:no-nvml" and "nvidia-ml-py" in outcome.warning


# ---- the fix in the warning follows the cause (issue 15 papercut) ----------------
def test_lock_warning_with_nvml_but_no_driver_asks_for_the_driver_only(monkeypatch, tmp_path) -> None:
    """The real pynvml of the venv on a machine without the NVIDIA driver."""
    monkeypatch.delenv(nvml.ENV_MODULE, raising=False)
    nvml.reset_module()
    try:
        pytest.importorskip("pynvml")
        if nvml.available():
            pytest.skip("the NVIDIA driver is loaded here: this is the no-driver case")
        outcome = ClockController(tmp_path, LockSpec("max")).lock([])
    finally:
        nvml.reset_module()
    assert outcome.state == "failed:no-nvml" and "\n" not in outcome.warning
    assert "nvmlInit failed" in outcome.warning and "no NVIDIA driver is loaded" in outcome.warning
    assert "install it" not in outcome.warning and "pip install" not in outcome.warning


def test_lock_warning_when_nvml_refuses_to_start_asks_for_root(fake, tmp_path) -> None:
    mod, path = fake
    data = json.loads(path.read_text())
    data["init_error"] = mod.NVML_ERROR_NO_PERMISSION
    path.write_text(json.dumps(data))
    outcome = ClockController(tmp_path / "st", LockSpec("max")).lock(visible(mod))
    assert outcome.state == "failed:no-permission" and "\n" not in outcome.warning
    assert "Insufficient Permissions" in outcome.warning and "needs root" in outcome.warning
    assert "nvidia-ml-py" not in outcome.warning and "driver" not in outcome.warning


def test_lock_warning_with_a_driver_library_but_no_loaded_driver(fake, tmp_path) -> None:
    mod, path = fake
    data = json.loads(path.read_text())
    data["init_error"] = mod.NVML_ERROR_DRIVER_NOT_LOADED
    path.write_text(json.dumps(data))
    outcome = ClockController(tmp_path / "st", LockSpec("max")).lock(visible(mod))
    assert outcome.state == "failed:no-nvml"
    assert "Driver Not Loaded" in outcome.warning and "no NVIDIA driver is loaded" in outcome.warning
    assert "pip install" not in outcome.warning


def test_lock_warning_without_a_visible_gpu_names_cuda_visible_devices(fake, tmp_path) -> None:
    outcome = ClockController(tmp_path / "st", LockSpec("max")).lock([])
    assert outcome.state == "failed:no-gpu" and "CUDA_VISIBLE_DEVICES" in outcome.warning
    assert "nvidia-ml-py" not in outcome.warning


def test_lock_state_file_goes_through_the_one_atomic_writer(fake, tmp_path, monkeypatch, capfd) -> None:
    """files.atomic_write (fsync, then rename) writes the state file: its
    test hook announces the write window of that very file."""
    mod, _ = fake
    monkeypatch.setenv("TRTPERF_TEST_WRITE_PAUSE", "0")
    ctl = ClockController(tmp_path / "st", LockSpec("max"))
    ctl.lock(visible(mod))
    try:
        assert f"in the write window of {ctl.state_file}" in capfd.readouterr().err
        assert json.loads(ctl.state_file.read_text())["status"] == "locked"
        assert sorted(p.name for p in (tmp_path / "st").iterdir()) == [".gitignore", ctl.state_file.name]
    finally:
        assert ctl.restore() == []


def test_restore_guard_restores_on_sigterm_then_terminates(fake, tmp_path) -> None:
    """In a child interpreter: lock, SIGTERM self, check the exit status."""
    mod, path = fake
    code = f"""
import os, signal, sys, time
from pytest_trtperf.gpu import clocks, pinning as gpu_pinning
ctl = clocks.ClockController({str(tmp_path / 'st')!r}, clocks.LockSpec("max"))
g = [gpu_pinning.VisibleGpu({mod.make_gpu(0)["uuid"]!r}, None, "")]
print(ctl.lock(g).state, flush=True)
clocks.RestoreGuard(ctl.restore).install()
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(5)
print("not reached")
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.stdout.strip() == "sm=1980", proc.stderr
    assert proc.returncode == -signal.SIGTERM
    assert gpu_state(path)[0]["locked_sm"] is None


# ---- whole sessions ----------------------------------------------------------------
@pytest.mark.parametrize("xdist", [False, True])
def test_session_locks_for_tests_and_restores_after(pytester, fake, xdist) -> None:
    mod, path = fake
    pytester.makeconftest(WIRING)
    pytester.makepyfile(CHECK_TEST.replace("__EXPECTED__", "[1980, 1980]").replace("__STATE__", '"sm=1980"'))
    args = ["--trt-lock-clocks=max", "-s"] + (["-n", "2"] if xdist else [])
    result = run(pytester, *args)
    result.assert_outcomes(passed=1)
    assert "trtperf clocks: sm=1980" in result.stdout.str()
    assert [g["locked_sm"] for g in gpu_state(path)] == [None, None]
    assert not list((pytester.path / ".trtperf" / ".state").glob("clocks-*.json"))


def test_failing_test_still_restores(pytester, fake) -> None:
    _, path = fake
    pytester.makeconftest(WIRING)
    pytester.makepyfile("def test_fails():\n    assert False\n")
    result = run(pytester, "--trt-lock-clocks=1500")
    result.assert_outcomes(failed=1)
    log = json.loads(path.read_text())["log"]
    assert [c["locked_sm"] for c in log if c["call"] == "SetGpuLockedClocks"] == [1500, 1500]
    assert [g["locked_sm"] for g in gpu_state(path)] == [None, None]


def test_exception_in_a_plugin_still_restores(pytester, fake) -> None:
    _, path = fake
    pytester.makeconftest(WIRING + "\ndef pytest_collection_modifyitems(items):\n    raise RuntimeError('boom')\n")
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = run(pytester, "--trt-lock-clocks=max")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    assert any(c["call"] == "SetGpuLockedClocks" for c in json.loads(path.read_text())["log"])
    assert [g["locked_sm"] for g in gpu_state(path)] == [None, None]


def test_no_permission_one_warning_line_and_run_continues(pytester, fake) -> None:
    _, path = fake
    set_gpus(path, permission="no-permission")
    pytester.makeconftest(WIRING)
    pytester.makepyfile(
        """
from pytest_trtperf.gpu import session as gpu_plugin

def test_state(request):
    plugin = gpu_plugin.get(request.config)
    assert plugin.clock_state() == "failed:no-permission"
    monitor = plugin.make_monitor(0.005)
    monitor.start()
    state = monitor.stop()
    assert state.clocks_locked == "failed:no-permission"
    assert "clocks_unlocked" in state.flags
"""
    )
    result = run(pytester, "--trt-lock-clocks=max")
    result.assert_outcomes(passed=1)
    warnings = [l for l in result.outlines if "could not lock GPU clocks" in l]
    assert len(warnings) == 1, result.outlines
    assert "root" in warnings[0] and "continuing with unlocked clocks" in warnings[0]


def test_no_permission_strict_is_a_usage_error(pytester, fake) -> None:
    _, path = fake
    set_gpus(path, permission="no-permission")
    pytester.makeconftest(WIRING)
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = run(pytester, "--trt-lock-clocks=max", "--trt-lock-clocks-strict")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [l for l in result.errlines if "could not lock GPU clocks" in l]
    assert len(errors) == 1 and "Traceback" not in result.stderr.str()


def test_bad_option_value_is_a_usage_error(pytester, fake) -> None:
    pytester.makeconftest(WIRING)
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = run(pytester, "--trt-lock-clocks=turbo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--trt-lock-clocks='turbo' is not valid" in result.stderr.str()


def test_ini_key_is_honoured(pytester, fake) -> None:
    _, path = fake
    pytester.makeconftest(WIRING)
    pytester.makeini("[pytest]\ntrt_lock_clocks = base\n")
    pytester.makepyfile(CHECK_TEST.replace("__EXPECTED__", "[1755, 1755]").replace("__STATE__", '"sm=1755"'))
    run(pytester).assert_outcomes(passed=1)
    assert [g["locked_sm"] for g in gpu_state(path)] == [None, None]


# ---- killed mid-measurement -----------------------------------------------------
def start_slow_session(pytester: pytest.Pytester, *args: str) -> tuple[subprocess.Popen, dict]:
    pytester.makeconftest(WIRING)
    pytester.makepyfile(test_slow=SLOW_TEST)
    ready = pytester.path / "ready"
    env = dict(os.environ, READY_FILE=str(ready))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:trtperf", "-p", "no:cacheprovider", "-q", *args],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(pytester.path.glob("ready.*"))
        if found:
            time.sleep(0.05)
            return proc, json.loads(found[0].read_text())
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    out = proc.communicate()[0]
    raise AssertionError(f"inner session never reached the test:\n{out}")


@pytest.mark.parametrize(
    "sig, args",
    [
        (signal.SIGTERM, ()),
        (signal.SIGINT, ()),
        (signal.SIGTERM, ("-n", "2")),
        (signal.SIGINT, ("-n", "2")),
    ],
    ids=["sigterm", "sigint", "sigterm-xdist", "sigint-xdist"],
)
def test_killed_mid_test_restores_clocks(pytester, fake, sig, args) -> None:
    _, path = fake
    proc, seen = start_slow_session(pytester, "--trt-lock-clocks=max", *args)
    try:
        assert seen["locked"] == [1980, 1980]  # locked while the test ran
        assert seen["clock_state"] == "sm=1980"
        proc.send_signal(sig)  # to the controller only, as CI runners do
        out = proc.communicate(timeout=90)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if sig == signal.SIGTERM:
        assert proc.returncode == -signal.SIGTERM, out
    else:
        assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert [g["locked_sm"] for g in gpu_state(path)] == [None, None], out
    assert not list((pytester.path / ".trtperf" / ".state").glob("clocks-*.json"))


def test_sigkill_leaves_a_lock_the_next_session_reports_and_clears(pytester, fake) -> None:
    mod, path = fake
    proc, seen = start_slow_session(pytester, "--trt-lock-clocks=max")
    proc.kill()
    proc.communicate(timeout=60)
    assert [g["locked_sm"] for g in gpu_state(path)] == [1980, 1980]  # nothing could run

    pytester.makepyfile(test_slow="def test_ok():\n    pass\n")
    result = run(pytester)  # not locking: report only
    result.assert_outcomes(passed=1)
    stale = [l for l in result.outlines if "may still have clocks locked" in l]
    uuid0 = mod.make_gpu(0)["uuid"]
    assert len(stale) == 2
    assert f"nvidia-smi -i {uuid0} -rgc" in stale[0] and str(proc.pid) in stale[0]
    assert [g["locked_sm"] for g in gpu_state(path)] == [1980, 1980]

    result = run(pytester, "--trt-lock-clocks=max")  # locks the same GPUs, resets at the end
    result.assert_outcomes(passed=1)
    assert [g["locked_sm"] for g in gpu_state(path)] == [None, None]
    result = run(pytester)
    assert not [l for l in result.outlines if "may still have clocks locked" in l]
