"""One target's trip: measure, judge, record (``runner``); a run with the
plugin disabled (``disabled``); a serving target under load (``serve``). No
pytest; called once by the fixture (tests/test_layers.py)."""
