"""MLflow records -> the cells of each table, matched to the jobs the suite plans.

A record belongs to a cell through its job key (the content hash of the job's identity), so
records of an older configuration of the suite are ignored (and counted), and a planned job
with no record is shown as missing, never left out. Per cell and seed, a FINISHED run gives
the per-episode accuracies; otherwise the reason is kept (the run's ``error``, a failed
training run, or "not run"). Derived columns (mean over corruptions, worst case over attacks)
are computed per episode from their member threats on the shared test episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from bench.errors import BenchError
from bench.plan.jobs import EvalJob, make_plan
from bench.plan.selection import Selection, select
from bench.registry import THREATS
from bench.report.aggregate import add_aggregates
from bench.report.filters import Filters, NoMatchingJobs
from bench.report.model import Cell, Collected, Column, RowModes, SettingData
from bench.report.validation import curves_by_row
from bench.suite.load import Component, DataSetting, Suite
from bench.threats.base import EoTConfig, Threat, draws_for
from bench.tracking.records import (
    CODE_VERSION,
    DEVICE,
    EPISODES_HASH,
    ERROR,
    FINGERPRINT,
    JOB_KEY,
    KEPT_STALE,
    LABEL,
    SEED,
    SUITE,
    THREAT_LABEL,
    TRAIN_KEY,
    RunRecord,
)
from bench.tracking.tags import evaluation_modes, flatten, identity_tags, job_params

PARAM_PREFIX = "threat.config."
SELECTED = "train_selected"  # on eval records (`bench.report.command.gather`): best_val@300, last@1000


def job_tags(job: EvalJob) -> dict[str, str]:
    """The tags and params the recorder writes for ``job`` (what filters are matched against)."""
    tags = identity_tags("", job)
    return {**job_params(job), **{k: v for k, v in tags.items() if k not in (SUITE, JOB_KEY, TRAIN_KEY)}}


def short_error(error: str | None) -> str:
    """The last line of a traceback (the exception), at most 200 characters."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return (lines[-1] if lines else "no error recorded")[:200]


def latest_by_key(records: Iterable[RunRecord]) -> dict[str, RunRecord]:
    """Job key -> its record: the last FINISHED run, else the last other run (oldest first in)."""
    chosen: dict[str, RunRecord] = {}
    for record in records:
        key = record.tags.get(JOB_KEY, "")
        if record.status == "FINISHED" or chosen.get(key) is None or chosen[key].status != "FINISHED":
            chosen[key] = record
    return chosen


def planned_jobs(suite: Suite, filters: Filters | None = None, selection: Selection | None = None) -> list[EvalJob]:
    """The suite's eval jobs in ``selection`` that pass ``filters``; unknown keys and empty
    selections are errors."""
    filters = filters or Filters()
    jobs = [(job, job_tags(job)) for job in select(make_plan(suite), selection or Selection()).all_eval_jobs()]
    variants = [(v.baseline.label, v.baseline.name) for v in suite.baselines]
    filters = filters.resolve(sorted({key for _, tags in jobs for key in tags}), variants)
    shown = [job for job, tags in jobs if filters.matches(tags)]
    if not shown:
        raise NoMatchingJobs(f"the filters ({filters.describe()}) match no job of suite {suite.name!r}. "
                             f"Check the values against `bench run {suite.name} --dry-run`.")
    return shown


def collect(suite: Suite, records: list[RunRecord], filters: Filters | None = None,
            selection: Selection | None = None) -> Collected:
    """Group records into tables (one per data setting), in the suite's order.

    Args:
        suite: the validated suite (its plan names every expected cell).
        records: `bench.tracking.RunRecord` objects of eval runs, plus failed train runs.
        filters: which jobs to show. selection: ``--seeds``/``--threats``/``--datasets``.
    """
    shown = planned_jobs(suite, filters, selection)
    latest = latest_by_key(records)
    plan = make_plan(suite)
    known = {job.key for job in plan.all_eval_jobs()} | {job.key for job in plan.train_jobs}
    ignored = sum(1 for r in records if r.tags.get(JOB_KEY) not in known)
    settings = [_setting(data, [j for j in shown if j.setting == data], latest, suite.seeds)
                for data in suite.datasets if any(j.setting == data for j in shown)]
    return Collected(settings, ignored)


def _setting(data: DataSetting, jobs: list[EvalJob], latest: dict[str, RunRecord],
             seeds: tuple[int, ...]) -> SettingData:
    rows = list(dict.fromkeys((j.train.variant.baseline.label, j.train.variant.baseline.name) for j in jobs))
    threats = list(dict.fromkeys(j.threat for j in jobs))
    cells: dict[tuple[str, str], Cell] = {}
    finished = []
    owners: dict[tuple[str, str, int], str] = {}
    for job in jobs:
        where = (job.train.variant.baseline.label, job.threat.label)
        _claim(owners, (*where, job.train.seed), job)
        cell = cells.setdefault(where, Cell(seeds))
        record = _fill(cell, job, latest)
        if record is not None:
            finished.append(record)
    columns = [_column(t, [latest.get(j.key) for j in jobs if j.threat == t]) for t in threats]
    columns += add_aggregates(columns, cells, [label for label, _ in rows], seeds)
    return SettingData(data, rows, columns, cells, seeds, _facts(finished), curves_by_row(finished),
                       row_modes(jobs))


def row_modes(jobs: list[EvalJob]) -> dict[str, RowModes]:
    """Each row's declared modes, from the plan (so stores older than the mode tags are marked
    too; the recorder writes the same `evaluation_modes`)."""
    out: dict[str, RowModes] = {}
    for job in jobs:
        label, modes = job.train.variant.baseline.label, evaluation_modes(job.train.variant)
        one_draw = modes.stochastic and isinstance(job.threat.config, EoTConfig) and \
            draws_for(modes.stochastic, job.threat.config) == 1
        seen = out.get(label, RowModes(modes.transductive, modes.stochastic))
        out[label] = RowModes(modes.transductive, modes.stochastic, seen.one_draw or one_draw)
    return out


def _claim(owners: dict[tuple[str, str, int], str], place: tuple[str, str, int], job: EvalJob) -> None:
    """One job per (row, column, seed): records of two job identities never share a cell."""
    other = owners.setdefault(place, job.key)
    if other != job.key:
        raise BenchError(f"jobs {other} and {job.key} would both fill row {place[0]!r}, column {place[1]!r}, "
                         f"seed {place[2]}; give the variants distinct labels in the suite.")


def _fill(cell: Cell, job: EvalJob, latest: dict[str, RunRecord]) -> RunRecord | None:
    """Put one job's outcome into its cell; returns the record when it FINISHED."""
    seed, record = job.train.seed, latest.get(job.key)
    if record is not None and record.status == "FINISHED":
        cell.per_seed[seed] = np.asarray(record.per_episode, dtype=np.float64)
        if record.per_query is not None:
            cell.per_query[seed] = record.per_query
        cell.hashes[seed] = record.tags.get(EPISODES_HASH, "")
        cell.device_seconds = (cell.device_seconds or 0.0) + float(record.metrics.get("device_seconds", 0.0))
        return record
    if record is not None:
        cell.problems[seed] = _problem(record, "")
        return None
    trained = latest.get(job.train.key)
    if trained is not None and trained.status != "FINISHED":
        cell.problems[seed] = _problem(trained, "training: ")
    else:
        cell.problems[seed] = "missing: not run"
    return None


def _problem(record: RunRecord, what: str) -> str:
    if record.status == "FAILED":
        return f"FAILED: {what}{short_error(record.tags.get(ERROR))}"
    return f"missing: {what}{record.status} run (interrupted; run the suite again to resume)"


def _column(threat: Component, records: list[RunRecord | None]) -> Column:
    """A threat column; its parameters as recorded (the plan's identity when nothing ran yet) and
    what its class declares (kind, threat model, gradient-free, own headline column). The kind is
    the class's `ThreatKind`, never the record's ``threat_kind`` tag text: past this point no
    column is told apart by a string."""
    recorded = next((r.params for r in records if r is not None and r.params), None)
    params = recorded if recorded is not None else flatten("threat", {"config": threat.resolved()})
    own = tuple(sorted((k[len(PARAM_PREFIX):], v) for k, v in params.items() if k.startswith(PARAM_PREFIX)))
    cls = threat_class(threat.name)
    return Column(threat.label, cls.kind, (), threat.name, own, cls.threat_model(threat.config), cls.gradient_free,
                  cls.display(threat.config), in_headline=cls.in_headline)


def threat_class(name: str) -> type[Threat]:
    """The class registered as threat ``name``, with its declarations typed (`bench.registry`
    sits below `bench.threats` and types a threat class by a protocol without them)."""
    cls = THREATS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Threat)):
        raise TypeError(f"threat {name!r} is registered as {cls!r}, not a bench.threats.base.Threat")
    return cls


def _facts(records: list[RunRecord]) -> dict[str, str]:
    """Test episodes per seed, episode-set hashes, devices and code versions of the finished runs."""
    def values(get: Callable[[RunRecord], str | int]) -> str:
        found = {get(r) for r in records}
        return ", ".join(str(v) for v in sorted(found)) or "none"

    return {"episodes": values(lambda r: len(r.per_episode)),
            "hashes": values(lambda r: r.tags.get(EPISODES_HASH, "")[:12]),
            "devices": values(lambda r: r.tags.get(DEVICE, "unknown")),
            "code": values(lambda r: r.tags.get(CODE_VERSION, "unknown")),
            "fingerprints": _per_label(records, lambda r: r.tags.get(FINGERPRINT) or "none"),
            "kept_stale": _per_label([r for r in records if r.tags.get(KEPT_STALE)],
                                     lambda r: r.tags.get(THREAT_LABEL, "")),
            "checkpoints": _per_seed([r for r in records if r.tags.get(SELECTED)], lambda r: r.tags[SELECTED])}


def _per_label(records: list[RunRecord], get: Callable[[RunRecord], str]) -> str:
    """``label: a, b; label2: c`` over the records (the code fingerprints behind each row)."""
    grouped: dict[str, set[str]] = {}
    for record in records:
        grouped.setdefault(record.tags.get(LABEL, ""), set()).add(str(get(record)))
    return "; ".join(f"{label}: {', '.join(sorted(found))}" for label, found in sorted(grouped.items()))


def _per_seed(records: list[RunRecord], get: Callable[[RunRecord], str]) -> str:
    """``label (seed 0) a; label (seed 1) b``: one value per row and seed (a train run's), in
    label and seed order (a set per label would merge seeds that happen to agree)."""
    found = {(r.tags.get(LABEL, ""), int(r.tags.get(SEED, "0"))): str(get(r)) for r in records}
    return "; ".join(f"{label} (seed {seed}) {value}" for (label, seed), value in sorted(found.items()))
