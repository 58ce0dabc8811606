"""The commands: `main` parses arguments (`bench = bench.cli:main`), `commands` carries them
out by driving every stage, `scaffold` writes a new baseline from ``templates/``."""

from bench.cli.main import main

__all__ = ["main"]
