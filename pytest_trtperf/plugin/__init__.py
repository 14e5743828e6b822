"""The pytest side: hooks (``hooks``, the ``pytest11`` entry point), the
``trt_bench`` fixture, options turned into settings once per session, the
session's outputs and pytest-benchmark compatibility. The top layer: nothing
below imports it (tests/test_layers.py)."""
