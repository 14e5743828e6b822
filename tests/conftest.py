"""The plugin's own tests run pytest inside pytest (pytester).

Those inner runs must see pytest-trtperf, pytest-xdist and pytest itself, not
whatever else is installed next to them: pytest-benchmark writes
``.benchmarks/`` into the test directory, pytest-randomly reorders and
reseeds, coverage and timeout plugins add output. Each inner run blocks the
third-party plugins known to interfere (blocking one that is not installed is
harmless); tests that need a clean environment clear ``PYTEST_ADDOPTS``
themselves.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: Third-party plugins that change what an inner run writes, prints or orders.
INTERFERING = ("benchmark", "randomly", "cov", "sugar", "timeout", "rerunfailures", "instafail", "html")


@pytest.fixture(autouse=True)
def _isolate_inner_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "pytester" not in request.fixturenames:
        return
    request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS when it starts: set ours after
    blocks = " ".join(f"-p no:{name}" for name in INTERFERING)
    monkeypatch.setenv("PYTEST_ADDOPTS", blocks)
