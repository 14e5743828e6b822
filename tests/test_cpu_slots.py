"""tests/cpu_slots.py between real processes: no more computing tests hold a
slot at once than there are slots, a freed slot is taken at once, and under
xdist a ``mostly_waits`` test runs while every slot is held."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from cpu_slots import CpuSlots, SlotPerTest
from helpers import lock_holder, pythonpath_with_tests


def child(tmp_path: Path, count: int, hold: float = 0.0) -> subprocess.Popen[str]:
    return lock_holder(tmp_path, f"from cpu_slots import CpuSlots\nheld = CpuSlots(DIR, {count})\nheld.take()", hold)


def test_a_process_waits_while_every_slot_is_held_and_takes_one_when_freed(tmp_path: Path) -> None:
    slots = CpuSlots(tmp_path, 2)
    slots.take()
    holder = child(tmp_path, 2, hold=30)  # the other slot
    float(holder.stdout.readline())  # type: ignore[union-attr]
    waiter = child(tmp_path, 2)
    time.sleep(0.5)
    assert waiter.poll() is None  # both slots held: it waits
    freed = time.time()
    slots.give_back()
    out, _ = waiter.communicate(timeout=30)
    assert float(out) >= freed
    holder.kill()
    holder.wait(timeout=30)
    slots.close()


def test_taking_every_slot_waits_for_each_holder_and_then_keeps_everyone_out(tmp_path: Path) -> None:
    holder = child(tmp_path, 2, hold=1.0)  # one of the two slots, for a second
    taken = float(holder.stdout.readline())  # type: ignore[union-attr]
    slots = CpuSlots(tmp_path, 2)
    slots.take_all()
    assert time.time() >= taken + 0.9 and slots.holds() == 2  # it waited for the holder
    holder.wait(timeout=30)
    waiter = child(tmp_path, 2)
    time.sleep(0.5)
    assert waiter.poll() is None  # no slot is free
    slots.give_back()
    out, _ = waiter.communicate(timeout=30)
    assert float(out) > 0
    slots.close()


def test_a_slot_held_by_a_process_that_died_is_free(tmp_path: Path) -> None:
    holder = child(tmp_path, 1, hold=30)
    float(holder.stdout.readline())  # type: ignore[union-attr]
    holder.kill()
    holder.wait(timeout=30)
    slots = CpuSlots(tmp_path, 1)
    start = time.monotonic()
    slots.take()  # flock goes with its holder
    assert time.monotonic() - start < 5
    slots.close()


def test_released_lets_another_process_take_the_slot_and_takes_one_again(tmp_path: Path) -> None:
    """What a test does while it waits for the host lock: it holds no slot."""
    slots = CpuSlots(tmp_path, 1)
    slots.take()
    with SlotPerTest(slots).released():
        assert slots.holds() == 0
        other = child(tmp_path, 1)  # the one slot is free: taken at once
        out, _ = other.communicate(timeout=30)
        assert float(out) > 0
    assert slots.holds() == 1
    slots.close()


@pytest.mark.mostly_waits
def test_under_xdist_a_waiting_test_runs_while_computing_tests_hold_every_slot(pytester: pytest.Pytester,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """One slot, three workers, three tests of 1.5 s: the two computing tests
    never overlap; the ``mostly_waits`` one does not wait for them."""
    pytester.makeconftest("""
import cpu_slots

def pytest_configure(config):
    config.addinivalue_line("markers", "mostly_waits: holds no slot")
    cpu_slots.install(config, 1)
""")
    pytester.makepyfile(test_three="""
import json, os, time
import pytest

def record(name):
    start = time.time()
    time.sleep(1.5)
    with open(os.path.join(os.environ["OUT_DIR"], name), "w") as f:
        json.dump([start, time.time()], f)

def test_compute_a():
    record("a")

def test_compute_b():
    record("b")

@pytest.mark.mostly_waits
def test_waits():
    record("w")
""")
    out = pytester.path / "out"
    out.mkdir()
    monkeypatch.setenv("OUT_DIR", str(out))
    monkeypatch.setenv("PYTHONPATH", pythonpath_with_tests())
    r = pytester.runpytest_subprocess("-n", "3", "-p", "no:cacheprovider", timeout=120)
    r.assert_outcomes(passed=3)
    (a0, a1), (b0, b1), (w0, w1) = (json.loads((out / n).read_text()) for n in "abw")
    assert a1 <= b0 or b1 <= a0, "two computing tests held the one slot at once"
    assert w0 < max(a1, b1) and w1 > min(a0, b0), "the waiting test waited for the computing ones"


def test_loaded_then_waiting_tests_head_one_share_and_long_tests_the_next(pytester: pytest.Pytester) -> None:
    from cpu_slots import schedule

    pytester.makeini("[pytest]\nmarkers =\n    mostly_waits: no slot\n    under_load: loops\n    long: long\n")
    items = pytester.getitems("""
import pytest

@pytest.fixture
def load():
    return []
""" + "".join(f"def test_c{i}(): pass\n" for i in range(10))
        + "".join(f"@pytest.mark.mostly_waits\ndef test_w{i}(): pass\n" for i in range(2))
        + "@pytest.mark.long\ndef test_long(): pass\ndef test_l0(load): pass\n@pytest.mark.under_load\ndef test_l1(): pass\n")
    names = sorted(item.name for item in items)
    schedule(items, 3)  # 15 tests: a share of 5 each
    assert sorted(item.name for item in items) == names  # none lost, none twice
    assert [item.name for item in items] == ["test_l0", "test_l1", "test_w0", "test_w1", "test_c0",
                                             "test_long", *(f"test_c{i}" for i in range(1, 10))]
    schedule(items, 5)  # a share of 3, shorter than the loaded and waiting tests: the long test follows them
    assert [item.name for item in items][:6] == ["test_l0", "test_l1", "test_w0", "test_w1", "test_long", "test_c0"]


def test_every_test_that_starts_the_loops_part_way_is_marked_under_load() -> None:
    """``schedule`` finds a test that requests ``load`` by its fixtures; one
    that starts the loops part-way (``request.getfixturevalue("load")``) only
    by its ``under_load`` marker: a test that forgets it runs the loops
    wherever it lands, beside the quiet tests."""
    import ast

    unmarked = []
    for path in sorted(Path(__file__).parent.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            starts = any(isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                         and call.func.attr == "getfixturevalue" and call.args
                         and isinstance(call.args[0], ast.Constant) and call.args[0].value == "load"
                         for call in ast.walk(node))
            marked = any("under_load" in ast.unparse(d) for d in node.decorator_list)
            if starts and not marked:
                unmarked.append(f"{path.name}::{node.name}")
    assert unmarked == []
