"""`bench report`: arguments and the command (reads MLflow through `bench.tracking` only).

``bench report SUITE`` writes ``reports/<suite>/``; ``bench report --all`` does so for every
shipped suite with records in the store and writes ``reports/README.md``, the index. Each file
names the command that made it (rebuilt from the parsed options, so it does not depend on how
the CLI was invoked) and the tracking store as the user gave it.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError
from bench.report.filters import Filters, NoMatchingJobs, parse_filters
from bench.report.model import FILES, FORMATS
from bench.suite.load import load_suite, shipped_suites

if TYPE_CHECKING:
    from bench.report.compare import Options
    from bench.report.results import Report
    from bench.tracking import Tracker
    from bench.tracking.records import RunRecord


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report command's own options (the CLI adds ``--tracking-uri``)."""
    parser.add_argument("suite", nargs="?", help="a suite name or path (or --all)")
    parser.add_argument("--all", action="store_true",
                        help="every shipped suite with records in the store, plus reports/README.md (the index)")
    parser.add_argument("--out", default="reports", help="output folder (default: reports/)")
    parser.add_argument("--format", default="all", choices=FORMATS,
                        help="md, latex, csv, json, html (with plots) or all (default)")
    parser.add_argument("--where", action="append", metavar="KEY=VALUE[,VALUE]",
                        help="keep jobs whose tag or param KEY has one of the values, e.g. threat=pgd,clean or "
                             "threat.config.eps=8/255 (repeatable; all must hold)")
    parser.add_argument("--baselines", metavar="A,B", help="keep these baseline labels or names")
    parser.add_argument("--ci", choices=("t", "bootstrap"), default="t",
                        help="cell intervals: Student t (default) or the two-level seed x episode bootstrap")
    parser.add_argument("--paired-test", choices=("t", "wilcoxon"), default="t",
                        help="paired test for the best marks: t (default) or Wilcoxon signed-rank")


def command_line(args: argparse.Namespace) -> str:
    """The canonical command: the target and every non-default option, in a fixed order."""
    parts = ["bench", "report", "--all" if args.all else args.suite]
    for item in getattr(args, "overrides", None) or ():
        parts += ["--set", item]
    for item in args.where or ():
        parts += ["--where", item]
    axes = tuple((f"--{axis}", getattr(args, axis, None), None) for axis in ("seeds", "threats", "datasets"))
    options = (("--baselines", args.baselines, None), *axes, ("--format", args.format, "all"), ("--ci", args.ci, "t"),
               ("--paired-test", args.paired_test, "t"), ("--out", args.out, "reports"),
               ("--tracking-uri", args.tracking_uri, None))
    parts += [p for flag, value, default in options if value != default for p in (flag, value)]
    return " ".join(shlex.quote(str(p)) for p in parts)


def gather(tracker: Tracker) -> list[RunRecord]:
    """Eval records plus the runs that explain missing cells: failed or interrupted train runs
    and interrupted eval runs (their eval jobs have no FINISHED or FAILED record). Each eval
    record also carries what its train run kept (`train_facts`)."""
    from bench.tracking import RunRecord
    from bench.tracking.records import JOB_KEY, KIND, SELECTION, TRAIN_KEY, short_tags

    runs = tracker.runs()
    extra, trained = [], {}
    for run in runs:
        tags = short_tags(run)
        kind, status = tags.get(KIND), run.info.status
        if (kind == "train" and status in ("FAILED", "KILLED")) or (kind == "eval" and status == "KILLED"):
            extra.append(RunRecord(run.info.run_id, status, tags, {}, {}, []))
        if kind == "train" and status == "FINISHED" and tags.get(SELECTION):
            trained[tags.get(JOB_KEY, "")] = train_facts(tracker, run, tags)
    records = tracker.records(runs)
    for record in records:
        record.tags.update(trained.get(record.tags.get(TRAIN_KEY, ""), {}))
    return extra + records


def train_facts(tracker: Tracker, run: Any, tags: dict[str, str]) -> dict[str, str]:
    """The train run's checkpoint (`checkpoint_text`), validation curve and selected step, as
    the tags `bench.report.cells` and `bench.report.validation` read on its eval records."""
    from bench.report.cells import SELECTED
    from bench.report.validation import CURVE, SELECTED_STEP, encode
    from bench.tracking import records  # by module: `SELECTED_STEP` above is the report's own key
    from bench.tracking.recording import VALIDATION_METRIC

    seconds = run.data.metrics.get("device_seconds")
    text = checkpoint_text(tags, run.data.params)
    best = tags.get(records.SELECTION) == "best_val"  # a step that was chosen, not just the last one
    return {SELECTED: text if seconds is None else f"{text}, trained {seconds:.0f} s",
            CURVE: encode(tracker.history(run.info.run_id, VALIDATION_METRIC)),
            SELECTED_STEP: tags.get(records.SELECTED_STEP, "") if best else ""}


def checkpoint_text(tags: dict[str, str], params: dict[str, str]) -> str:
    """``best_val@1200 (stopped early at 1700)``, ``best_val@3000 (no plateau within 3000)``,
    ``last@1000``: which weights a train run kept, and whether its validation plateaued (had
    ``train.patience`` validations without a new best) before the step cap."""
    # here, not at the top: the CLI imports this module at every start, bench.tracking imports mlflow
    from bench.tracking.records import SELECTED_STEP, SELECTION, STOPPED_EARLY

    if tags[SELECTION] == "none":  # `bench.run.runner.UNTRAINED`: evaluated as given
        return "not trained (weights as given)"
    text = f"{tags[SELECTION]}@{tags.get(SELECTED_STEP, '?')}"
    steps = params.get("train.steps", "?")
    if tags.get(STOPPED_EARLY):
        return f"{text} (stopped early at {tags[STOPPED_EARLY]})"
    early_stopping = params.get("train.patience", "0") not in ("0", "")
    if tags[SELECTION] == "best_val" and (early_stopping or tags.get(SELECTED_STEP) == steps):
        return f"{text} (no plateau within {steps})"
    return text


def out_folder(args: argparse.Namespace) -> Path:
    """``--out``, or by default the project's ``reports/`` (`bench.project`), else ./reports."""
    from bench.project import project_folder

    return (project_folder("reports") or Path(args.out)) if args.out == "reports" else Path(args.out)


def _one(name: str, args: argparse.Namespace, filters: Filters, options: Options) -> Report | None:
    """Report one suite; returns its `Report`, or None when the store has no runs of it."""
    from bench.plan.selection import Selection
    from bench.report.cells import planned_jobs
    from bench.report.leaderboard import build_report, write_report
    from bench.tracking import Tracker, resolve_uri, store_exists
    from bench.tracking.additions import suite_with_additions
    from bench.tracking.store import shown_uri

    # with the models of `bench eval-model` (rows) and the threats of `bench eval` (columns)
    suite = suite_with_additions(name, tuple(getattr(args, "overrides", None) or ()), args.tracking_uri)
    selection = Selection.from_text(None, getattr(args, "seeds", None), getattr(args, "threats", None),
                                    getattr(args, "datasets", None))
    planned_jobs(suite, filters, selection)  # a bad filter is refused before the records are read
    if not store_exists(resolve_uri(args.tracking_uri)):
        return None
    tracker = Tracker(args.tracking_uri, suite.name, create=False)
    records = gather(tracker)
    if not records:
        return None
    formats = (args.format,)
    report = build_report(suite, records, command_line(args), shown_uri(tracker.uri), filters, options,
                          plots=args.format in ("html", "all"), selection=selection)
    for path in write_report(report, out_folder(args) / suite.name, formats):
        print(f"wrote {path}")
    return report


def report(args: argparse.Namespace) -> int:
    """``bench report``: exit 0, or 2 (via `BenchError`) for bad input or a suite with no runs."""
    if bool(args.suite) == bool(args.all):
        raise BenchError("give one suite name or path, or --all (e.g. `bench report smoke`, `bench report --all`).")
    from bench.report.compare import Options

    filters = parse_filters(args.where, args.baselines)
    options = Options(ci=args.ci, test=args.paired_test)
    if args.all:
        return _report_all(args, filters, options)
    made = _one(args.suite, args, filters, options)
    if made is None:
        from bench.tracking import resolve_uri

        raise BenchError(f"no evaluation runs of suite {args.suite!r} in {resolve_uri(args.tracking_uri)}. Run "
                         f"`bench run {args.suite}` first (with the same --tracking-uri).")
    if args.format in ("md", "all"):
        print((out_folder(args) / made.suite.name / FILES["md"]).read_text(encoding="utf-8"))
    return 0


def _report_all(args: argparse.Namespace, filters: Filters, options: Options) -> int:
    """Every shipped suite with records; then the index and the README's figures, from the reports."""
    from bench.report.docs_blocks import rewrite_docs
    from bench.report.index import figures_block, render_index, rewrite_block, written_reports
    from bench.suite.load import REPO_ROOT

    suites = {load_suite(stem).name: stem for stem in shipped_suites()}
    names, notes = list(suites), {}
    for name, stem in suites.items():
        try:
            _one(stem, args, filters, options)
        except NoMatchingJobs:
            notes[name] = "no job matches the filters"
    out = out_folder(args)
    out.mkdir(parents=True, exist_ok=True)
    reports = written_reports(out, names)
    index = out / "README.md"
    index.with_name("README.md.tmp").write_text(render_index(names, reports, notes), encoding="utf-8")
    index.with_name("README.md.tmp").replace(index)
    print(f"wrote {index}; no report: {', '.join(n for n in names if n not in reports) or 'none'}")
    if out.resolve() == (REPO_ROOT / "reports").resolve() and rewrite_block(REPO_ROOT / "README.md",
                                                                           figures_block(reports)):
        print(f"wrote the figures of {REPO_ROOT / 'README.md'}")
        for page in rewrite_docs(REPO_ROOT, reports):
            print(f"wrote the report tables of {page}")
    return 0
