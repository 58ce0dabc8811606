"""``bench eval-model SUITE --model package.module:factory [--weights FILE] --label NAME`` and
``bench export SUITE LABEL --out FILE``: models in and out of a suite's store."""

from __future__ import annotations

import argparse
import sys

from bench.errors import BenchError


def add_eval_model_command(commands: argparse._SubParsersAction, execution: object, command: object) -> None:
    """Register ``eval-model`` with the execution options ``run`` has (``execution(parser)``)."""
    parser = command(commands, "eval-model", "Evaluate a model trained elsewhere on a suite's own test "  # type: ignore[operator]
                     "episodes and threats; `bench report SUITE` then shows it as a row (nothing is trained).")
    parser.add_argument("--model", required=True, metavar="PACKAGE.MODULE:FACTORY",
                        help="a class or function called with no arguments that returns the model: an "
                             "embedding (images -> features) or a module with adapt(support_x, support_y)")
    parser.add_argument("--weights", default=None, metavar="FILE",
                        help="a torch.save(model.state_dict()) file (or a `bench export` checkpoint) to load")
    parser.add_argument("--label", required=True, help="the model's row name in the report")
    parser.add_argument("--head", default="auto", help="auto (default), prototype, linear or model (its own adapt)")
    parser.add_argument("--transductive", action="store_true",
                        help="declare that the model's output for an image depends on its batch (batch-"
                             "statistics batch norm)")
    parser.add_argument("--skip-gradient-threats", action="store_true",
                        help="run the other threats when the model is not differentiable in its input")
    execution(parser)  # type: ignore[operator]
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (summary lines only)")


def eval_model(args: argparse.Namespace) -> int:
    """Check the model on one test episode, then evaluate it (exit 1 if a job failed)."""
    from bench.api import run_model
    from bench.cli.commands import _print_plan, _resume_options, execution_options, report_outcomes
    from bench.scheduler.model_eval import ModelRun
    from bench.suite.added import model_entry
    from bench.user_code import existing_file

    if args.weights:
        existing_file(args.weights, "--weights")
    if args.summary and not args.dry_run:
        raise BenchError("--summary shapes the plan that --dry-run prints; add --dry-run")
    entry = model_entry(args.model, args.label, args.weights, args.head, args.transductive)
    request = ModelRun(args.suite, entry, tuple(args.overrides or ()), args.skip_gradient_threats)
    plan = run_model(request, args.tracking_uri, None, dry_run=True)
    resume = _resume_options(args, plan)
    if args.dry_run:
        return _print_plan(plan, args.tracking_uri, resume, args.summary)
    outcomes = run_model(request, args.tracking_uri, execution_options(args, resume))
    failed = report_outcomes(plan.suite.name, outcomes)
    if not failed:
        print(f"{args.label}: evaluated; `bench report {args.suite}` shows it beside the suite's baselines.",
              file=sys.stdout)
    return 1 if failed else 0


def add_export_command(commands: argparse._SubParsersAction, command: object) -> None:
    """Register ``export``: a finished train run as a self-describing checkpoint file."""
    parser = command(commands, "export", "Write a trained baseline of a suite to a self-describing checkpoint "  # type: ignore[operator]
                     "file (weights, job identity, code fingerprint, data setting, headline metrics, the entry "
                     "that rebuilds it); bench.api.load_checkpoint(FILE) restores it without the store.")
    parser.add_argument("suite", help="a suite name from suites/ or a path to a .yaml file")
    parser.add_argument("label", help="the baseline's label in the suite (or a model added with eval-model)")
    parser.add_argument("--setting", default=None, help="the test setting's label, when the label has several")
    parser.add_argument("--seed", type=int, default=0, help="the suite seed (default 0)")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write the checkpoint")
    parser.add_argument("--tracking-uri", default=None, help="the store (default as bench run's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", dest="overrides",
                        help="the --set overrides the suite ran with")


def export(args: argparse.Namespace) -> int:
    from bench.api import export_checkpoint

    path = export_checkpoint(args.suite, args.label, args.out, args.setting, args.seed, args.tracking_uri,
                             tuple(args.overrides))
    print(f"wrote {path.resolve()}: use it as --weights of `bench eval-model`, or "
          f"bench.api.load_checkpoint({str(path)!r})")
    return 0
