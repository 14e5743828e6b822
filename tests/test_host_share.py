"""tests/host_share.py between two real processes: busy loops never start
beside a test that holds the host shared, and such a test never starts while
they run."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from helpers import lock_holder
from host_share import HostShare


def child(tmp_path: Path, how: str, hold: float = 0.0) -> subprocess.Popen[str]:
    return lock_holder(tmp_path, f"from host_share import HostShare\nheld = HostShare(DIR)\nheld.{how}()", hold)


def test_taking_the_host_waits_for_a_sharer_to_let_go(tmp_path: Path) -> None:
    share = HostShare(tmp_path)
    share.share()
    proc = child(tmp_path, "take")
    time.sleep(0.5)
    released = time.time()
    share.release()
    out, _ = proc.communicate(timeout=30)
    assert float(out) >= released
    share.close()


def test_sharing_waits_while_another_process_holds_the_host_and_sharers_do_not_wait_for_each_other(
        tmp_path: Path) -> None:
    proc = child(tmp_path, "take", hold=0.5)
    taken = float(proc.stdout.readline())  # type: ignore[union-attr]
    share = HostShare(tmp_path)
    share.share()
    shared_at = time.time()
    assert shared_at >= taken + 0.45
    other = child(tmp_path, "share")
    out, _ = other.communicate(timeout=30)  # another sharer gets it while this one holds it
    assert float(out) >= shared_at
    share.release()
    proc.wait(timeout=30)
    share.close()
