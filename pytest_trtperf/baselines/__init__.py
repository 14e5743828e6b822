"""Baselines: the committed JSON store, its locks and checks, the revision a
baseline was recorded at, and ``verify`` of a history. Above ``core``, below
the gate that reads them (tests/test_layers.py)."""
