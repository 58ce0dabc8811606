"""`bench report`: arguments and the command (reads MLflow through `bench.tracking`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench.config import load_suite
from bench.errors import BenchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report command's own options (the CLI adds ``--tracking-uri``)."""
    parser.add_argument("suite", help="a suite name or path")
    parser.add_argument("--out", default="reports", help="output folder (default: reports/)")


def report(args: argparse.Namespace) -> int:
    from bench.report.leaderboard import write_report
    from bench.tracking import Tracker

    suite = load_suite(args.suite)
    tracker = Tracker(args.tracking_uri, suite.name, create=False)
    records = tracker.records()
    if not records:
        raise BenchError(f"no evaluation runs of suite {suite.name!r} in {tracker.uri}. Run "
                         f"`bench run {args.suite}` first (with the same --tracking-uri).")
    command = "bench report " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["report"] \
        else f"bench report {args.suite}"
    text = write_report(suite, records, Path(args.out) / suite.name, command, tracker.uri)
    print(text)
    return 0
