"""The commands: `main` (``bench = bench.cli:main``) sets up signal handling and hands the
arguments to `dispatch`, which parses them; `commands` carries them out by driving every
stage, `scaffold` writes a new baseline from ``templates/``."""

from __future__ import annotations

from collections.abc import Sequence

from bench.cli.stopped import interrupted
from bench.run import stopping


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``bench`` command; its exit code.

    SIGINT and SIGTERM are handled from the first instruction on (`bench.run.stopping.at_once`),
    before the command's heavy imports (torch, MLflow: seconds), so a stop at any moment ends it
    with 130/143 and the usual message, never a traceback or a death by the signal.
    """
    with stopping.at_once():
        try:
            from bench.cli.dispatch import dispatch

            code = dispatch(argv)
        except stopping.Stopped as exc:  # during the imports, before `dispatch` handles it
            return interrupted(exc)
        return stopping.exit_code_if_stopped(code)
