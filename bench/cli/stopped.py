"""What a stopped command prints and returns (light: imported before anything heavy)."""

from __future__ import annotations

import sys


def interrupted(exc: KeyboardInterrupt) -> int:
    """The message and exit code (130 for SIGINT, 143 for SIGTERM) of a stopped command."""
    print("interrupted: finished jobs are recorded, unfinished ones are not; run the same command to "
          "resume.", file=sys.stderr)
    return int(getattr(exc, "exit_code", 130))
