"""``bench eval-model SUITE --model package.module:factory [--weights FILE] --label NAME``."""

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
    from bench.cli.commands import _print_plan, _resume_options, execution_options, report_outcomes
    from bench.scheduler.model_eval import ModelRun, run_model
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
