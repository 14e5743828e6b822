"""The package version, one definition: the root package re-exports it and
the JSON documents, baselines and reports write it."""

__version__ = "0.1.0"
