"""The gate: a verdict from a measurement and its baseline entry (time in
``timing``). Above ``baselines``, below the pipeline that calls it
(tests/test_layers.py)."""
