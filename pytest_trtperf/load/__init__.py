"""Latency under load: open-loop arrivals, execution slots, the driver that
times requests from their scheduled arrival, percentile bounds, the rate search.

No pytest and no TensorRT here: the fixture (``trt_bench.serve``) adapts
pytest to :func:`serve.run_serve`; slots for GPU work import their libraries
only when made.
"""
