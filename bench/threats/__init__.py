"""Threats by name: clean, query attacks, corruptions (and, later, support-set threats)."""

from bench.threats import attacks, clean, corruption_threats  # noqa: F401
