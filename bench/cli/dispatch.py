"""Command line: argument parsing only. Exit codes: 0 ok, 1 some runs failed, 2 invalid input."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from bench.cli.eval_model import add_eval_model_command, add_export_command
from bench.cli.stopped import interrupted
from bench.errors import BenchError
from bench.report import command as report_command

EXAMPLES = {
    "run": "example: bench run smoke --device cpu\n         bench run suites/my-suite.yaml --tracking-uri http://127.0.0.1:5000",
    "validate": "example: bench validate smoke robust-glyphs suites/my-suite.yaml",
    "list": "example: bench list baselines",
    "report": "example: bench report smoke   (writes reports/smoke/leaderboard.md)",
    "new-baseline": "example: bench new-baseline my_method   (then: pytest tests/test_contract.py -k my_method)",
    "data": "example: bench data list\n         bench data prepare omniglot --root ~/data",
    "docs": "example: bench docs suite-format   (writes docs/suite-format.md)",
    "eval": "example: bench eval robust-glyphs --threat '{name: pgd, params: {eps: 16/255, steps: 50}}'",
    "export": "example: bench export smoke protonet --setting 'glyphs 5-way 1-shot' --out protonet.pt",
    "eval-model": "example: bench eval-model smoke --model mymodels:make_encoder --weights enc.pt --label mine\n"
                  "         bench report smoke",
}


def _add_suite_options(parser: argparse.ArgumentParser, baselines: bool = True) -> None:
    """``--set`` overrides and the filters, the same on run, validate and report."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", dest="overrides",
                        help="override a suite value, parsed and validated like the YAML (repeatable), e.g. "
                             "--set train.steps=10 --set baselines[1].train.steps=50; overridden runs are "
                             "other jobs")
    if baselines:
        parser.add_argument("--baselines", metavar="A,B", help="only these baseline labels or names (globs)")
    parser.add_argument("--seeds", metavar="0,1", help="only these seeds")
    parser.add_argument("--threats", metavar="A,B", help="only these threat labels or names (globs, e.g. 'pgd*')")
    parser.add_argument("--datasets", metavar="A,B",
                        help="only these data settings ('glyphs 5-way 1-shot') or data set names (globs)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else mlflow.db in the project "
                             "folder, else in the working directory)")


class _Version(argparse.Action):
    """``--version``: the package version and, in a checkout, the commit (read only when asked)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from bench.environment import code_version

        print(f"fewshot-bench {code_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="fewshot-bench: robust few-shot learning "
                                     "benchmark suites.", epilog="example: bench run smoke && bench report smoke",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version (with the git commit) and exit")
    parser.add_argument("--project", default=None, metavar="DIR",
                        help="the folder suites/, baselines/ and reports/ come from (default: the nearest folder "
                             "upwards holding suites/ or baselines/, else the installed checkout)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_command(commands)
    _add_eval_command(commands)
    add_eval_model_command(commands, _add_execution_options, _command)
    add_export_command(commands, _command)
    _add_validate_command(commands)
    _add_list_command(commands)
    _add_data_command(commands)
    _add_new_baseline_command(commands)
    _add_report_command(commands)
    _add_docs_command(commands)
    return parser


def _command(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             help_text: str) -> argparse.ArgumentParser:
    """A subcommand whose help line is also its description, with its example (`EXAMPLES`) as epilog."""
    return commands.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES.get(name),
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_run_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = _command(commands, "run", "Train and evaluate every unfinished job of a suite, recording to MLflow.")
    _add_execution_options(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bars (summary lines only)")


def _add_eval_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = _command(commands, "eval", "Evaluate a suite's finished checkpoints on threats the suite does not "
                        "list, recorded as new evaluation runs (nothing is trained).")
    evaluate.add_argument("--threat", action="append", required=True, metavar="ENTRY", dest="extra_threats",
                          help="a threat entry as in the YAML, e.g. pgd or '{name: pgd, params: {eps: 16/255, "
                               "steps: 50}}' (repeatable)")
    _add_execution_options(evaluate)
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars (summary lines only)")


def _add_execution_options(run: argparse.ArgumentParser) -> None:
    """What ``run`` and ``eval`` share: the suite, the store, the devices and the resume flags."""
    run.add_argument("suite", help="a suite name from suites/ or a path to a .yaml file")
    _add_common(run)
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                     help="auto: every visible GPU (CUDA_VISIBLE_DEVICES respected), else the CPU")
    run.add_argument("--workers", type=int, default=None,
                     help="parallel job slots (default: one per GPU x --jobs-per-gpu, else one per core)")
    run.add_argument("--jobs-per-gpu", type=int, default=1, help="small jobs sharing one GPU (default 1)")
    run.add_argument("--memory-per-job", type=float, default=None, metavar="GB",
                     help="fill each GPU's free memory with jobs of this size instead of --jobs-per-gpu")
    run.add_argument("--threads-per-job", type=int, default=1,
                     help="torch CPU threads per job; part of the numerics, so results match for any "
                          "--workers (default 1)")
    run.add_argument("--retries", type=int, default=0, help="re-run a failed job up to N times")
    run.add_argument("--backend", choices=["local", "ray"], default="local", help="local processes or Ray")
    run.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    _add_suite_options(run)
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (what would run, be skipped, be reused, and why) and write nothing")
    run.add_argument("--summary", action="store_true",
                     help="with --dry-run: counts per baseline and job kind instead of every job")
    run.add_argument("--reuse-stale", action="store_true",
                     help="keep finished runs made by code that has changed since (recorded on the run)")
    run.add_argument("--rerun", action="append", metavar="PATTERN",
                     help="re-run finished jobs whose baseline label, threat label or job key matches "
                          "(glob; repeatable)")
    run.add_argument("--force", action="store_true", help="re-run every job, finished or not")


def _add_validate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = _command(commands, "validate", "Check suites (schema, names, grid) without running anything.")
    validate.add_argument("suites", nargs="+", help="suite names or paths")
    _add_suite_options(validate)


def _add_list_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = _command(commands, "list", "List registered baselines, data sets, threats or shipped suites.")
    listing.add_argument("what", choices=["baselines", "datasets", "threats", "suites", "backbones"])


def _add_data_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data = _command(commands, "data", "List, prepare (download or convert) and verify data sets.")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data_commands.add_parser("list", help="each data set: where it is expected, present or not, its hash")
    for action, text in (("prepare", "build the cached uint8 arrays (download where a public source exists)"),
                         ("verify", "re-hash the prepared files and check the split sizes")):
        sub = data_commands.add_parser(action, help=text, description=text)
        sub.add_argument("name", help="a data set name (bench data list)")
        sub.add_argument("--image-size", type=int, default=None, help="pixels per side (default: native)")
        if action == "prepare":
            sub.add_argument("--raw", default=None, help="folder holding the data set's original files")
    for sub in (data, *data_commands.choices.values()):
        sub.add_argument("--root", default=None, help="data folder (default: $BENCH_DATA, else "
                         "~/.cache/fewshot-bench)")


def _add_new_baseline_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    new = _command(commands, "new-baseline", "Write baselines/NAME.py from a commented template that passes the "
                   "conformance tests as it is.")
    new.add_argument("name", help="the new baseline's name (lower case, e.g. my_method)")


def _add_report_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = _command(commands, "report", "Write a suite's leaderboard tables from its MLflow records.")
    report_command.add_arguments(report)
    _add_suite_options(report, baselines=False)  # the report's own --baselines also takes --where's forms
    _add_common(report)


def _add_docs_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    docs = _command(commands, "docs", "Write the reference pages generated from the code (the suite format).")
    docs.add_argument("page", choices=["suite-format"], help="suite-format: docs/suite-format.md")
    docs.add_argument("--check", action="store_true", help="exit 1 when the page is not current, write nothing")


def dispatch(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bench.cli import commands, eval_model

    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": commands.run, "validate": commands.validate, "list": commands.listing,
        "report": report_command.report, "data": commands.data,
        "new-baseline": commands.new_baseline, "docs": commands.docs, "eval": commands.evaluate,
        "eval-model": eval_model.eval_model, "export": eval_model.export,
    }
    from bench.project import reset_project, set_project

    try:
        set_project(args.project)
        return handlers[args.command](args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        return interrupted(exc)
    except BrokenPipeError:
        return _closed_pipe()
    finally:
        reset_project()  # a later command (or API call) of this process finds its own


def _closed_pipe() -> int:
    """The reader of our output went away (``bench run --dry-run | head``): stop quietly.

    Python would otherwise print a second BrokenPipeError when it flushes stdout at exit, so
    stdout is pointed at /dev/null first. 141 is the shell's code for a death by SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141
