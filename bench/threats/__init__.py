"""Threats by name: clean, query attacks, corruptions, domain shift, support-set threats."""

from bench.threats import attacks, clean, corruption, shift, support  # noqa: F401
