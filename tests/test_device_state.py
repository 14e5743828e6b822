"""The NVML GPU-state sampler, against FakeNVML (this machine has no GPU)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pytest_trtperf.gpu import device_state, nvml
from pytest_trtperf.gpu import pinning as gpu_pinning
from pytest_trtperf.gpu.device_state import DeviceStateSampler, flags_for, others_on_gpu
from pytest_trtperf.core.results import DeviceState
from pytest_trtperf.core.workload import StateMonitor

from helpers import FAKE_NVML as FAKE


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """FakeNVML with two GPUs; yields (module, state path)."""
    state = tmp_path / "nvml.json"
    monkeypatch.setenv(nvml.ENV_MODULE, str(FAKE))
    monkeypatch.setenv("TRTPERF_FAKE_NVML_STATE", str(state))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # CUDA is absent here; keep the PCI-bus-id path from touching a real driver.
    monkeypatch.setattr(gpu_pinning, "cuda_pci_bus_id", lambda index: None)
    nvml.reset_module()
    mod = nvml.module()
    mod.write_state(state, [mod.make_gpu(0), mod.make_gpu(1, power_mw=95000, temperature=41)])
    yield mod, state
    nvml.reset_module()


def edit_gpu(state: Path, index: int, **fields: object) -> None:
    data = json.loads(state.read_text())
    data["gpus"][index].update(fields)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, state)


def wait_for_samples(sampler: DeviceStateSampler, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sampler._samples) < n and time.monotonic() < deadline:
        time.sleep(0.005)


def test_sampler_is_a_state_monitor(fake) -> None:
    assert isinstance(DeviceStateSampler(), StateMonitor)


def test_quiet_window_summarises_clocks_power_temperature(fake) -> None:
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    wait_for_samples(sampler, 5)
    state = sampler.stop()
    assert isinstance(state, DeviceState)
    assert state.kind == "gpu"
    assert state.samples >= 5
    assert state.sm_clock_mhz_median == 1980 and state.sm_clock_mhz_min == 1980
    assert state.mem_clock_mhz_median == 2619
    assert state.power_w_median == pytest.approx(70.0)
    assert state.temperature_c_max == 35
    assert state.flags == ()
    assert state.timeline and state.timeline[0][1] == 1980
    # round-trips through the wire format the lead uses
    assert DeviceState.from_dict(state.to_dict()) == state


def test_power_cap_during_window_is_flagged_with_clock_drop(fake) -> None:
    mod, path = fake
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    wait_for_samples(sampler, 3)
    edit_gpu(path, 0, reasons=mod.nvmlClocksEventReasonSwPowerCap, sm_clock=1650, power_mw=700000)
    n = len(sampler._samples)
    wait_for_samples(sampler, n + 3)
    state = sampler.stop()
    assert "power_throttle" in state.flags
    assert "thermal_throttle" not in state.flags
    assert "sw_power_cap" in state.throttle_reasons
    assert state.sm_clock_mhz_min == 1650
    assert state.power_w_max == pytest.approx(700.0)


def test_thermal_slowdown_is_flagged(fake) -> None:
    mod, path = fake
    edit_gpu(path, 0, reasons=mod.nvmlClocksEventReasonHwThermalSlowdown, temperature=88)
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    wait_for_samples(sampler, 2)
    state = sampler.stop()
    assert state.flags == ("thermal_throttle",)
    assert state.temperature_c_max == 88


def test_another_process_on_the_gpu_marks_busy(fake) -> None:
    _, path = fake
    edit_gpu(path, 0, processes=[{"pid": os.getpid()}, {"pid": 4_000_000}])
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    state = sampler.stop()
    assert "busy" in state.flags


def test_only_our_process_is_not_busy(fake) -> None:
    _, path = fake
    edit_gpu(path, 0, processes=[{"pid": os.getpid()}])
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    assert "busy" not in sampler.stop().flags


def test_process_arriving_mid_window_marks_busy(fake) -> None:
    _, path = fake
    sampler = DeviceStateSampler(0, 0.002)
    sampler.start()
    edit_gpu(path, 0, processes=[{"pid": os.getpid()}, {"pid": 4_000_001}])
    state = sampler.stop()  # stop() reads the process list once more
    assert "busy" in state.flags


def test_an_idle_context_on_the_gpu_is_not_busy(fake) -> None:
    """A process that only holds a context (a notebook, the parent of a test
    run: seen on the lent H200, where every subprocess run was 'busy' because
    of its idle parent) runs no kernels: it does not share the GPU."""
    _, path = fake
    edit_gpu(path, 0, processes=[{"pid": os.getpid()}, {"pid": 4_000_004, "smUtil": 0}])
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    state = sampler.stop()
    assert "busy" not in state.flags and state.other_processes == ()
    edit_gpu(path, 0, processes=[{"pid": os.getpid()}, {"pid": 4_000_004, "smUtil": 35}])
    sampler.start()
    state = sampler.stop()
    assert "busy" in state.flags and state.other_processes == ("4000004",)


def test_without_per_process_utilization_presence_counts(fake) -> None:
    _, path = fake
    edit_gpu(path, 0, processes=[{"pid": os.getpid()}, {"pid": 4_000_005, "smUtil": 0}],
             process_utilization=False)
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    assert "busy" in sampler.stop().flags  # the driver cannot tell idle from running: be careful


@pytest.mark.parametrize("present, active, ours, sharing", [
    ((10, 20), (10, 20), (10,), (20,)),
    ((10, 20), (10,), (10,), ()),  # 20 holds a context but runs nothing
    ((10, 20), None, (10,), (20,)),  # no utilization: presence decides
    ((1010, 1020), (1010, 1020), (10,), (1020,)),  # PID namespace: one running process is us
    ((1010, 1020), (1010,), (10,), ()),  # namespaced, the other is idle
])
def test_sharing_gpu(present: tuple, active: tuple | None, ours: tuple, sharing: tuple) -> None:
    assert device_state.sharing_gpu(present, active, ours) == sharing


def test_other_gpus_processes_do_not_count(fake) -> None:
    _, path = fake
    edit_gpu(path, 1, processes=[{"pid": 4_000_002}, {"pid": 4_000_003}])
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    assert "busy" not in sampler.stop().flags


@pytest.mark.parametrize(
    "pids, ours, others",
    [
        ((), {1}, ()),
        ((1,), {1}, ()),
        ((1, 7), {1}, (7,)),
        ((7,), {1}, ()),  # container: our host PID differs, the lone process is us
        ((7, 8), {1}, (8,)),
    ],
)
def test_others_on_gpu(pids, ours, others) -> None:
    assert others_on_gpu(pids, ours) == others


def test_flags_for_reasons() -> None:
    assert flags_for(["sw_power_cap", "gpu_idle"], False) == ("power_throttle",)
    assert flags_for(["hw_power_brake_slowdown", "sw_thermal_slowdown"], True) == (
        "power_throttle",
        "thermal_throttle",
        "busy",
    )
    assert flags_for(["hw_slowdown"], False) == ("hw_slowdown",)
    assert flags_for(["applications_clocks_setting", "gpu_idle"], False) == ()


def test_decode_reasons_names_bits_and_keeps_unknown() -> None:
    assert nvml.decode_reasons(0) == ()
    assert nvml.decode_reasons(0x4 | 0x40) == ("sw_power_cap", "hw_thermal_slowdown")
    assert nvml.decode_reasons(0x8000) == ("0x8000",)


def test_device_follows_cuda_visible_devices_uuid_not_nvml_index(fake, monkeypatch) -> None:
    mod, _ = fake
    uuid1 = mod.make_gpu(1)["uuid"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", uuid1)
    sampler = DeviceStateSampler(0, 0.005)
    sampler.start()
    state = sampler.stop()
    assert state.power_w_median == pytest.approx(95.0)  # GPU 1's, not GPU 0's
    assert state.temperature_c_max == 41


def test_device_by_pci_bus_id_when_cuda_reports_one(fake, monkeypatch) -> None:
    mod, _ = fake
    bus1 = mod.make_gpu(1)["pci_bus_id"]
    short = "0000:" + bus1.split(":", 1)[1].lower()  # CUDA's 4-digit domain, lower case
    monkeypatch.setattr(gpu_pinning, "cuda_pci_bus_id", lambda index: short)
    assert nvml.init()
    try:
        dev = gpu_pinning.resolve_cuda_device(0)
        assert dev.uuid() == mod.make_gpu(1)["uuid"]
    finally:
        nvml.shutdown()


def test_timeline_is_thinned_but_stats_use_every_sample(fake) -> None:
    sampler = DeviceStateSampler(0, 0.001)
    sampler.start()
    wait_for_samples(sampler, device_state.TIMELINE_POINTS + 50, timeout=30)
    state = sampler.stop()
    assert state.samples > device_state.TIMELINE_POINTS
    assert 0 < len(state.timeline) <= device_state.TIMELINE_POINTS


def test_clock_lock_state_and_extra_flags_are_carried(fake) -> None:
    sampler = DeviceStateSampler(0, 0.005, clocks_locked="failed:no-permission", extra_flags=("clocks_unlocked",))
    sampler.start()
    state = sampler.stop()
    assert state.clocks_locked == "failed:no-permission"
    assert "clocks_unlocked" in state.flags


def test_make_monitor_without_nvml_returns_none(monkeypatch) -> None:
    monkeypatch.setenv(nvml.ENV_MODULE, "no_such_nvml_module_xyz")
    nvml.reset_module()
    try:
        assert device_state.make_monitor() is None
    finally:
        nvml.reset_module()


def test_make_monitor_when_driver_missing_returns_none(fake) -> None:
    mod, path = fake
    mod.write_state(path, [mod.make_gpu(0)], init_error=mod.NVML_ERROR_DRIVER_NOT_LOADED)
    assert device_state.make_monitor() is None


def test_make_monitor_with_gpu_gives_working_sampler(fake) -> None:
    sampler = device_state.make_monitor(0, 0.005)
    assert sampler is not None
    sampler.start()
    assert sampler.stop().samples >= 2


def test_nvml_refcount_shuts_down_once(fake) -> None:
    mod, _ = fake
    nvml.init()
    nvml.init()
    nvml.shutdown()
    assert mod.nvmlDeviceGetCount() == 2  # still initialised
    nvml.shutdown()
    with pytest.raises(mod.NVMLError_Uninitialized):
        mod.nvmlDeviceGetCount()


def test_a_reason_left_over_at_the_window_edge_does_not_flag() -> None:
    from pytest_trtperf.gpu.device_state import flags_for, persistent_reasons

    cap, idle = 0x004, 0x000  # nvmlClocksEventReasonSwPowerCap, none
    leftover = [cap] + [idle] * 19
    assert persistent_reasons(leftover) == ()
    assert flags_for(persistent_reasons(leftover), busy=False) == ()
    sustained = [cap] * 5 + [idle] * 15
    assert flags_for(persistent_reasons(sustained), busy=False) == ("power_throttle",)
    assert persistent_reasons([cap]) == ("sw_power_cap",)  # one sample is the whole window
