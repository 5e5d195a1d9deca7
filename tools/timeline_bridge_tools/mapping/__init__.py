"""Mapping tooling: the cases files' runner and the sample events."""
