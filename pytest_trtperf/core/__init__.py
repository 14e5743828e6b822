"""The bottom layer: what a measurement is, independent of pytest, baseline
files and GPUs. Workload protocol, the measuring loop and its stop rule,
statistics and noise, results and verdict data, identity and fingerprints,
formatting, settings dataclasses, file-writing primitives. Imports nothing
from the folders above it (tests/test_layers.py)."""
