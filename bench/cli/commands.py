"""What each CLI command does, given parsed arguments; returns the exit code."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.registry import BACKBONES, BASELINES, DATASETS, THREATS
from bench.suite.load import known_suites, load_suite, suite_path
from bench.suite.params import defaults


def _params(cls: Any) -> str:
    """Default parameters as suites write them (pixel radii as ``8/255``, as labels show them)."""
    from bench.suite.labels import format_value

    values = defaults(cls.Config)
    try:
        config = cls.Config()
    except TypeError:  # a Config with required fields: no defaults instance to read declarations from
        return ", ".join(f"{k}={v!r}" for k, v in values.items()) or "-"
    return ", ".join(f"{k}={format_value(config, k, v) if isinstance(v, float) else repr(v)}"
                     for k, v in values.items()) or "-"


def _file(cls: type) -> str:
    """The file a baseline class is defined in, relative to the cwd where it lies below it."""
    path = Path(inspect.getfile(cls)).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _suite_line(name: str) -> str:
    """``name  description  (file)``: a shipped suite as `bench list suites` shows it."""
    path = suite_path(name)
    try:
        description = load_suite(name).description.strip()
    except BenchError as exc:  # a suite that does not validate is still listed, and says why
        description = f"(invalid: {str(exc)[:80]})"
    return f"{name:24} {description}\n{'':24} file: {path}"


def listing(args: argparse.Namespace) -> int:
    if args.what == "baselines":
        rows = [f"{n:12} {c.paper}\n{'':12} file: {_file(c)}\n{'':12} params: {_params(c)}" for n, c in BASELINES]
        rows += [f"{'(broken)':12} {path}: {problem} (left out until fixed)"
                 for path, problem in sorted(BASELINES.broken.items())]
    elif args.what == "threats":
        rows = [f"{n:18} {c.kind:10} {c.source}\n{'':18} params: {_params(c)}" for n, c in THREATS]
    elif args.what == "datasets":
        rows = [f"{n:16} {c.citation}" for n, c in DATASETS]
    elif args.what == "backbones":
        rows = [f"{n:12} params: {_params(c)}" for n, c in BACKBONES]
    else:
        rows = [_suite_line(name) for name in known_suites()]
    print("\n".join(rows))
    return 0


def data(args: argparse.Namespace) -> int:
    """``bench data list | prepare | verify``."""
    from pathlib import Path

    from bench.data import commands as data_commands

    root = Path(args.root).expanduser() if args.root else None
    if args.data_command == "list":
        for row in data_commands.list_datasets(root):
            state = f"present  {row['hash'][:12]}" if row["present"] else "missing"
            print(f"{row['name']:17} {state:22} {row['path']}")
        return 0
    if args.data_command == "prepare":
        raw = Path(args.raw).expanduser() if args.raw else None
        dataset = data_commands.prepare_dataset(args.name, root, raw, args.image_size)
        print(f"prepared {args.name}: {tuple(dataset.images.shape)} images, "
              + ", ".join(f"{s} {dataset.num_classes(s)} classes" for s in sorted(dataset.splits))
              + f"; hash {dataset.content_hash[:12]}")
        return 0
    report = data_commands.verify_dataset(args.name, root, args.image_size)
    sizes = ", ".join(f"{s} {r['classes']}/{r['expected']}" for s, r in report["splits"].items())
    print(f"ok: {args.name} at {report['path']}: checksums match; classes {sizes}"
          + ("" if report["complete"] else " (partial copy)"))
    return 0


def new_baseline(args: argparse.Namespace) -> int:
    from bench.cli.scaffold import new_baseline as write

    path = write(args.name)
    print(f"wrote {path}\nnext: edit it, then run `python -m pytest tests/test_contract.py -k {args.name}` "
          f"and use it in a suite as `baselines: [{args.name}]`")
    return 0


def selected_plan(name: str, args: argparse.Namespace) -> Any:
    """The plan of suite ``name`` with the command's ``--set`` overrides and filters applied."""
    from bench.plan.jobs import make_plan
    from bench.plan.selection import Selection, select

    suite = load_suite(name, tuple(args.overrides or ()))
    selection = Selection.from_text(getattr(args, "baselines", None), args.seeds, args.threats, args.datasets)
    return select(make_plan(suite), selection)


def validate(args: argparse.Namespace) -> int:
    """Validate every suite given; report each problem, exit 2 if any suite is invalid."""
    bad = 0
    for name in args.suites:
        try:
            plan = selected_plan(name, args)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            bad += 1
            continue
        suite = plan.suite
        missing = [d for d in sorted({d.name for d in suite.datasets})
                   if not DATASETS.get(d)().is_prepared() and d != "glyphs"]
        note = f"; data not prepared here: {', '.join(missing)}" if missing else ""
        print(f"ok: {suite.path}: {len(plan.train_jobs)} train jobs, {len(plan.all_eval_jobs())} "
              f"evaluations{note}")
    return 2 if bad else 0


def run(args: argparse.Namespace) -> int:
    if args.summary and not args.dry_run:
        raise BenchError("--summary shapes the plan that --dry-run prints; add --dry-run (a run itself "
                         "always prints one line per job)")
    plan = selected_plan(args.suite, args)
    resume = _resume_options(args, plan)
    if args.dry_run:
        return _print_plan(plan, args.tracking_uri, resume, args.summary, args.workers)
    return _execute(plan, args, resume)


def evaluate(args: argparse.Namespace) -> int:
    """``bench eval SUITE --threat ENTRY...``: the suite's finished train runs evaluated on other
    threats (the suite's ``threats`` replaced, as ``--set threats=[...]`` would); refused, with
    nothing run, while any of its train jobs is not finished."""
    from bench.plan import fingerprint
    from bench.scheduler.resume import decide
    from bench.tracking import Tracker

    own_overrides = tuple(args.overrides or ())
    args.overrides = [*own_overrides, f"threats=[{', '.join(args.extra_threats)}]"]
    plan = selected_plan(args.suite, args)
    resume = _resume_options(args, plan)
    fingerprint.clear_cache()
    tracker = Tracker(args.tracking_uri, plan.suite.name, create=False)
    decisions = decide(plan, tracker.finished_runs(), tracker.experiment_id, resume)
    untrained = [job for job in plan.train_jobs if decisions[job.key].action == "run"]
    if untrained:
        raise BenchError(f"bench eval evaluates finished checkpoints only; {len(untrained)} train job(s) are not "
                         f"finished, e.g. {untrained[0].name} ({decisions[untrained[0].key].reason}). "
                         f"Run `bench run {args.suite}` first.")
    if args.dry_run:
        return _print_plan(plan, args.tracking_uri, resume, args.summary)
    _store_threats(args.suite, own_overrides, args.extra_threats, tracker)
    return _execute(plan, args, resume)


def _store_threats(suite: str, overrides: tuple[str, ...], entries: list[str], tracker: Any) -> None:
    """Store the ``bench eval`` threat entries with the suite's runs (`bench.suite.added`), so
    that `bench report` shows them as columns; an entry the suite itself lists is not stored."""
    from bench.suite.added import Additions, entry_tag
    from bench.suite.read import parse_yaml_text

    for text in entries:
        entry = parse_yaml_text(text, "--threat", "a threat entry, e.g. pgd or '{name: pgd, params: {eps: 8/255}}'")
        try:
            load_suite(suite, overrides, Additions(threats=(entry,)))
        except BenchError:
            print(f"note: --threat {text} is (or overlaps) a threat of the suite: its report column is the suite's")
            continue
        tracker.add_entry("threats", entry_tag(entry), entry)


def _execute(plan: Any, args: argparse.Namespace, resume: Any) -> int:
    """Run ``plan`` with the execution flags of ``run`` / ``eval``; exit code 1 if a job failed."""
    from bench.scheduler import run_suite
    from bench.scheduler.progress import Progress

    outcomes = run_suite(plan.suite, args.tracking_uri, execution_options(args, resume),
                         Progress(not args.no_progress), plan)
    return 1 if report_outcomes(plan.suite.name, outcomes) else 0


def execution_options(args: argparse.Namespace, resume: Any) -> Any:
    """`bench.scheduler.RunOptions` from the execution flags; out-of-range counts refused."""
    from bench.scheduler import RunOptions

    for flag in ("workers", "jobs_per_gpu", "threads_per_job", "retries"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "retries" else 1):
            raise BenchError(f"--{flag.replace('_', '-')} {value} is out of range; give a positive number.")
    return RunOptions(args.device, args.workers, args.jobs_per_gpu, args.memory_per_job,
                      args.threads_per_job, args.retries, args.backend, args.address, resume)


def report_outcomes(name: str, outcomes: list[Any]) -> list[Any]:
    """Print the closing summary line and each failure; returns the failed outcomes."""
    failed = [o for o in outcomes if o.failed]
    trained = sum(o.trained for o in outcomes)
    print(f"{name}: {len(outcomes)} train jobs ({trained} trained now), {len(failed)} with failures")
    for outcome in failed:
        print(f"failed: {outcome.job.name}: " + "; ".join(outcome.failed), file=sys.stderr)
    return failed


def _resume_options(args: argparse.Namespace, plan: Any) -> Any:
    """``--reuse-stale``, ``--rerun PATTERN`` and ``--force``; a pattern that matches no job is refused."""
    from bench.scheduler.resume import ResumeOptions, unmatched

    resume = ResumeOptions(args.reuse_stale, tuple(args.rerun or ()), args.force)
    missing = unmatched(plan, resume)
    if missing:
        raise BenchError(f"--rerun {missing[0]!r} matches no job of suite {plan.suite.name!r}. Give a baseline "
                         f"label, a threat label or a job key (globs allowed); `bench run {plan.suite.name} "
                         f"--dry-run` lists them.")
    return resume


def _print_plan(plan: Any, uri: str | None, resume: Any, summary: bool = False, slots: int | None = None) -> int:
    """Every job with what `bench run` would do with it (``summary``: counts per baseline and
    job kind, `bench.cli.plan_summary`); reads the store, writes nothing."""
    from bench.plan import fingerprint
    from bench.scheduler.resume import decide, resumes_from
    from bench.tracking import Tracker

    fingerprint.clear_cache()
    tracker = Tracker(uri, plan.suite.name, create=False)
    decisions = decide(plan, tracker.finished_runs(), tracker.experiment_id, resume)
    if summary:
        from bench.cli.plan_summary import summary_lines

        print("\n".join(summary_lines(plan, decisions)))
    for i, job in enumerate(() if summary else plan.train_jobs, 1):
        step = resumes_from(tracker.uri, job, decisions[job.key])
        resumed = f", resumes from step {step} of {job.variant.train.steps}" if step else ""
        print(f"{i:3}. train {job.key} {job.name} [{decisions[job.key].describe()}{resumed}]")
        for ev in plan.eval_jobs[job.key]:
            tested = f" · {ev.setting.label}" if ev.setting != job.data else ""  # trained on another shape
            print(f"       eval  {ev.key} {ev.threat.label}{tested} [{decisions[ev.key].describe()}]")
    counts = Counter(d.action for d in decisions.values())
    print(f"{plan.suite.name}: {counts['run']} jobs to run, {counts['skip']} finished, "
          f"{counts['copy']} reused from other suites (store {tracker.uri})")
    if counts["run"]:
        print("\n".join(_estimate(plan, tracker, {k for k, d in decisions.items() if d.action == "run"}, slots)))
    return 0


def _estimate(plan: Any, tracker: Any, to_run: set[str], slots: int | None) -> list[str]:
    """The cost lines of a dry run (`bench.scheduler.estimate`), on this machine's device kind."""
    import os

    import torch

    from bench.environment import device_name
    from bench.scheduler.estimate import device_kind, estimate_lines, measured_rates

    kind = device_kind(device_name(torch.device("cuda" if torch.cuda.is_available() else "cpu")))
    rates = measured_rates(tracker.runs(everywhere=True), kind)
    return estimate_lines(plan, to_run, rates, kind, slots or torch.cuda.device_count() or os.cpu_count() or 1)


__all__ = ["listing", "validate", "run", "suite_path"]


def docs(args: argparse.Namespace) -> int:
    """``bench docs suite-format [--check]``: the page generated from the schema."""
    from bench.suite.docs import PAGE, render_page
    from bench.suite.load import REPO_ROOT

    path, text = REPO_ROOT / PAGE, render_page()
    current = path.is_file() and path.read_text(encoding="utf-8") == text
    if args.check:
        print(f"{PAGE}: {'current' if current else 'out of date: run `bench docs suite-format`'}")
        return 0 if current else 1
    if not current:
        path.with_name(path.name + ".tmp").write_text(text, encoding="utf-8")
        path.with_name(path.name + ".tmp").replace(path)
    print(f"wrote {path}" if not current else f"{path} is current")
    return 0
