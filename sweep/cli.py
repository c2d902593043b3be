"""The `sweep` command: parses arguments and delegates to the stages (sweep.submit,
sweep.collect, sweep.physics). Imports of the stages stay inside the handlers so that `sweep
--help` is fast and the CLI never imports TensorFlow. Every error a user meets is a SweepError;
EXIT_STATUS maps each kind to the exit status, here and nowhere else."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .core.errors import (BackendError, GridError, InputError, LockedError, NotFoundError, RenderError,
                          ResultsError, SweepError)

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2
#: (error kind, exit status), most specific first: what the user wrote is 2, the rest 1.
EXIT_STATUS: tuple[tuple[type[SweepError], int], ...] = (
    (GridError, EXIT_BAD_INPUT), (InputError, EXIT_BAD_INPUT), (NotFoundError, EXIT_ERROR),
    (RenderError, EXIT_ERROR), (BackendError, EXIT_ERROR), (LockedError, EXIT_ERROR), (ResultsError, EXIT_ERROR),
    (SweepError, EXIT_ERROR))


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # a pipe or a CI log is not 80 columns wide: do not squeeze the leaderboard
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, width=width)


def cmd_validate(args) -> int:
    """`sweep validate GRID`: check a grid (or a pipeline file and both its grids) and print what it
    makes: its configurations, or its search space. Returns 0; a grid's problems raise GridError
    (exit 2)."""
    from .core.expand import expand
    from .core.grid import load_grid
    from .core.gridspec import count_points
    from .core.pipeline import describe_pipeline, load_pipeline, looks_like_pipeline

    if looks_like_pipeline(args.grid):  # a pipeline file: it and both its grids
        print(describe_pipeline(load_pipeline(args.grid, args.root, checks=_grid_checks()), _grid_checks()))
        return EXIT_OK
    spec = load_grid(args.grid, args.root, checks=_grid_checks())
    for warning in spec.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if spec.search is not None:
        from .core.gridspec import describe_search

        print(f"{args.grid}: valid; sweep '{spec.name}' ({spec.model}) searches {len(spec.swept)} "
              f"hyperparameter(s) with Optuna (`sweep search {args.grid}`):")
        print("\n".join(describe_search(spec)))
        return EXIT_OK
    runs = expand(spec)
    configs = len({r.config_id for r in runs})
    extra = f" × {spec.repeats} repeats = {len(runs)} runs" if spec.repeats > 1 else ""
    sampled = f" (sampled from {count_points(spec)} grid points)" if spec.sample else ""
    print(f"{args.grid}: valid; sweep '{spec.name}' ({spec.model}) expands to {configs} "
          f"configuration{'s' if configs != 1 else ''}"
          f"{sampled}{extra}")
    return EXIT_OK


def _submit_options(args, grid: Path | None):
    from .submit.stage import AUTO, CONDOR, LOCAL, SubmitOptions

    mode = LOCAL if args.local else CONDOR if getattr(args, "condor", False) else AUTO
    return SubmitOptions(grid=grid, root=args.root, mode=mode, dry_run=getattr(args, "dry_run", False),
                         show=getattr(args, "show", False), use_dag=not args.no_dag,
                         force=getattr(args, "force", False), cpus=args.cpus, progress=not args.no_progress,
                         wait=args.wait)


def _grid_checks():
    """What the stages check for the pure grid validator (sweep.api.data_step's checks)."""
    return _data_step()["checks"]


def _data_step() -> dict:
    """The physics' data step, handed to the submit stage (sweep.api.data_step: the Python API and
    the CLI submit through the same code)."""
    from .api import data_step

    return data_step()


def cmd_submit(args) -> int:
    """`sweep submit GRID`: render the grid's jobs and run them here or queue them on the pool (a
    search grid is handed to cmd_search), then wait and collect as asked. Returns 1 when every run
    failed, else 0; a pipeline file raises InputError (exit 2)."""
    from .submit.stage import submit_grid

    outcome = submit_grid(_submit_options(args, args.grid), _console(), **_data_step())
    if outcome.follow == "search":  # a grid with a search: block is a search
        if args.dry_run:
            print(f"{args.grid} is a search grid: its trials are submitted one by one by its driver "
                  f"(`sweep search {args.grid}`; `sweep validate` prints its space)")
            return EXIT_OK
        args.driver = False
        return cmd_search(args)
    return _after_submit(args, outcome)


def cmd_search(args) -> int:
    """An adaptive search (sweep.search): the driver in the local universe, or here with --local."""
    from .search.stage import SearchOptions, run_driver, start_search

    if getattr(args, "driver", False):  # the driver job's own command line
        return run_driver(args.grid, args.root)
    mode = "local" if args.local else "condor" if getattr(args, "condor", False) else "auto"
    options = SearchOptions(grid=args.grid, root=args.root, mode=mode, progress=not args.no_progress,
                            cpus=args.cpus)
    outcome = start_search(options, _console(), **_data_step())
    if outcome == "done" and not getattr(args, "no_collect", False):
        from .core.grid import load_grid

        args.sweep = load_grid(args.grid, args.root).name
        cmd_collect(args)
    return EXIT_OK


def cmd_chain(args) -> int:
    """The two-step chain of a pipeline file (sweep.chain): one local-universe job, or here."""
    from .chain.run import ChainOptions, run_chain_job, start_chain

    step = _data_step()
    if args.driver:  # the chain job's own command line
        return run_chain_job(args.pipeline, args.root, _console(), **step)
    mode = "local" if args.local else "condor" if args.condor else "auto"
    start_chain(ChainOptions(pipeline=args.pipeline, root=args.root, mode=mode, progress=not args.no_progress,
                             cpus=args.cpus), _console(), **step)
    return EXIT_OK


def _chain(args):
    """The record of the chain named on the command line, or None (a sweep, or every sweep)."""
    from .chain.stages import chain_record

    return chain_record(args.root, args.sweep) if getattr(args, "sweep", None) else None


def cmd_resubmit(args) -> int:
    """`sweep resubmit SWEEP`: rerun the sweep's failed, held and removed runs (without --failed, also
    those never submitted), then wait and collect as asked. Returns 1 when every run failed, else 0."""
    from .submit.stage import resubmit

    outcome = resubmit(args.sweep, _submit_options(args, None), _console(), _console(stderr=True),
                       failed_only=args.failed, **_data_step())
    return _after_submit(args, outcome)


def _after_submit(args, outcome) -> int:
    """Wait for a pool's sweep when asked, then show the leaderboard (unless --no-collect)."""
    if outcome.follow == "wait":
        from .submit.stage import wait

        wait(outcome.sweep, args.root, _console(), timeout=args.wait_timeout)
    if outcome.follow and not args.no_collect:
        args.sweep = outcome.sweep
        cmd_collect(args)
    return EXIT_ERROR if outcome.all_failed else EXIT_OK


def cmd_reproduce(args) -> int:
    """`sweep reproduce SWEEP RUN [--dir D]`: copy what the run's job received into a folder and
    print the one command that runs it again here. Returns 0."""
    from .submit.reproduce import reproduce

    made = reproduce(args.root, args.sweep, args.run, args.dir.resolve() if args.dir else None)
    print(f"run {args.run} of {args.sweep}: what its job received is in {made.folder}")
    for note in made.notes:
        print(f"  ({note})")
    print(f"run it again here with its seed:\n  {made.command}")
    return EXIT_OK


def cmd_logs(args) -> int:
    """`sweep logs SWEEP RUN [--err] [--follow]`: a run's job events, hold history and stdout (stderr
    with --err); with --follow, a running job's output as it comes until the job ends. Returns 0."""
    from functools import partial

    from .submit.logs import show_logs

    return show_logs(args.sweep, args.root, args.run, stream="err" if args.err else "out",
                     follow=args.follow, write=partial(print, flush=True))


def cmd_throttle(args) -> int:
    """`sweep throttle SWEEP N`: at most N node jobs of the sweep's running DAG(s) submitted at once,
    set in the running DAGMan (HTCondor 25.10 or newer). Returns 0."""
    from .submit.throttle import throttle

    throttle(args.sweep, args.root, args.n)
    return EXIT_OK


def cmd_status(args) -> int:
    """`sweep status [NAME]`: a chain's stages, or the states of a sweep's runs (of every sweep
    without a name) with the running jobs' epochs and the best so far, once or with --watch until
    every run has ended; --json: the same as JSON (one object per sweep and refresh). Returns 0."""
    from .submit.status import print_status, print_status_json, watch

    record = _chain(args)
    if record is not None:
        if args.json:
            raise InputError(f"{args.sweep} is a chain: `sweep status --json` gives a sweep's runs (of the chain's "
                             f"stages: sweep status {args.sweep}-clusters --json, …)")
        from .chain.stages import print_chain_status

        print_chain_status(args.sweep, record, args.root, _console())
        return EXIT_OK
    if args.watch:
        watch(args.sweep, args.root, _console(), interval=args.interval,
              as_json=(lambda line: print(line, flush=True)) if args.json else None)
    elif args.json:
        print_status_json(args.sweep, args.root)
    else:
        print_status(args.sweep, args.root, _console())
    return EXIT_OK


def cmd_collect(args) -> int:
    """`sweep collect [SWEEP]`: rank the finished runs, list the failed ones, export the rows and copy
    the best models as asked (a chain: its stages, then each stage's leaderboard). Returns 0, or 1
    when run as the DAG's FINAL node of a DAG with failed nodes."""
    from .collect.stage import CollectOptions, collect_sweeps

    record = _chain(args)
    if record is not None:  # a chain: its stages, then each stage's leaderboard
        from .chain.stages import stage_lines, stage_sweeps

        for line in stage_lines(record):
            print(line)
        for name in stage_sweeps(record, args.root):
            collect_sweeps(CollectOptions(root=args.root, sweep=name, top=getattr(args, "top", None)), _console(),
                           _console(stderr=True))
        return EXIT_OK

    # getattr: also called with other parsers' arguments (submit's), which lack collect's options
    options = CollectOptions(root=args.root, sweep=args.sweep, top=getattr(args, "top", None),
                             by=getattr(args, "by", None), where=getattr(args, "filter", None),
                             fmt=getattr(args, "format", None), output=getattr(args, "output", None),
                             per_run=getattr(args, "per_run", False), best=getattr(args, "best", 3))
    collect_sweeps(options, _console(), _console(stderr=True))
    # the DAG's FINAL node: the DAG failed when nodes failed, even though collecting worked
    dag_status, failed = getattr(args, "dag_status", None), getattr(args, "failed_count", None)
    if (dag_status or 0) != 0 or (failed or 0) > 0:
        print(f"the DAG ended with status {dag_status}: {failed} node(s) failed", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def cmd_report(args) -> int:
    """`sweep report NAME`: write the sweep's (or the chain's) static HTML report and print where.
    Returns 0."""
    from .collect.report_html import write_report
    from .core.render import relative_to_root

    if _chain(args) is not None:
        from .chain.report import write_chain_report

        path = write_chain_report(args.sweep, args.root, top=args.top, output=args.output)
        print(f"report written to {relative_to_root(path, args.root)}")
        return EXIT_OK

    path = write_report(args.sweep, args.root, top=args.top, by=args.by, output=args.output)
    print(f"report written to {relative_to_root(path, args.root)}")
    return EXIT_OK


def cmd_simulate(args) -> int:
    """`sweep data simulate`: simulate waveforms into a training dataset (npz), print its summary
    (notes to stderr). Returns 0; --threshold without --peak-model raises InputError (exit 2)."""
    from .physics.datasets import simulate_to_file
    from .physics.datastep import read_params_file, require_model

    params = read_params_file(args.params)
    require_model("peak model", args.peak_model)
    if args.threshold is not None and args.peak_model is None:
        raise InputError("--threshold applies to the peaks of --peak-model; give the model too")
    summary = simulate_to_file(args.out, args.waveforms, args.seed, params, progress=not args.no_progress,
                               peak_model=args.peak_model,
                               peak_threshold=0.5 if args.threshold is None else args.threshold)
    for line in summary.pop("notes", []):
        print(line, file=sys.stderr)
    print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()))
    return EXIT_OK


def cmd_data_inspect(args) -> int:
    """`sweep data inspect FILE...`: per file and channel, what the file holds and how sweep reads it
    (sweep.physics.beamtest.describe). Returns 0; a file it cannot read raises InputError (exit 2)."""
    from .physics.beamtest import describe, inspect

    for run in inspect(args.files, **_beamtest_options(args)):
        print(describe(run))
    return EXIT_OK


def cmd_data_import(args) -> int:
    """`sweep data import FILE... --out D.npz`: the files' tube channels into a beam-test dataset (no
    labels), whole or not at all. Returns 0; bad input raises InputError (exit 2)."""
    from .physics.beamtest import describe, import_files

    summary = import_files(args.files, args.out, **_beamtest_options(args))
    for run in summary["runs"]:
        print(describe(run))
    print(f"{summary['out']}: {summary['waveforms']} waveforms of {summary['samples']} samples every "
          f"{summary['dt_ns']:.4f} ns")
    return EXIT_OK


def _beamtest_options(args) -> dict:
    return {"layout": args.layout, "channel_map": args.channel_map, "sampling_rate": args.sampling_rate,
            "polarity": args.polarity, "encoding": args.encoding}


def cmd_export_onnx(args) -> int:
    """`sweep export onnx NAME`: a sweep's run or a chain's leaders as ONNX with deploy.json,
    checked against Keras (sweep.collect.export chooses, sweep.physics.export exports). Returns 0;
    a failed check raises ModelError (exit 2), nothing written."""
    from .collect.export import export_targets
    from .core.render import relative_to_root
    from .physics.export import export_onnx

    for target in export_targets(args.sweep, args.root, rank=args.rank, run=args.run, out=args.out,
                                 threshold=args.threshold):
        d = export_onnx(target.model, target.out, threshold=target.threshold)
        point = f", working point {d.threshold:g}" if d.threshold is not None else ""
        print(f"{target.what}: {relative_to_root(target.out, args.root)}/model.onnx (opset {d.opset}{point}); "
              f"ONNX Runtime vs Keras on {d.check['inputs']} held-out inputs: max |Δ| {d.check['max_abs_diff']:.2g}")
    return EXIT_OK


def cmd_export_tracking(args) -> int:
    """`sweep export tensorboard|mlflow SWEEP`: a sweep's ranked runs (curves, hyperparameters, test
    metrics) for a tracking tool, read from the run folders here (sweep.collect.tracking). Returns 0."""
    from .collect import tracking

    if args.export_command == "tensorboard":
        done = tracking.export_tensorboard(args.sweep, args.root, out=args.out)
    else:
        done = tracking.export_mlflow(args.sweep, args.root, store=args.store)
    print(f"{args.sweep}: {done.runs} ranked run(s) exported for {done.tool} into {done.location}\n"
          f"open it with: {done.command}")
    return EXIT_OK


def cmd_dashboard(args) -> int:
    """`sweep dashboard SWEEP`: optuna-dashboard on a search's study, through the driver's journal
    lock, on localhost, read-only unless --writable; until Ctrl-C. Returns 0."""
    from .search.dashboard import serve

    serve(args.sweep, args.root, args.host, args.port, writable=args.writable,
          ready=lambda url: print(f"{args.sweep}: {url}  (Ctrl-C stops it)", flush=True))
    return EXIT_OK


def _float_type(accept: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """argparse type: a number that ``accept`` takes; anything else is a usage error (exit 2)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = float("nan")  # refused below, with the same message as an out-of-range value
        if not accept(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return v
    return parse


def _list_type(convert: Callable[[str], Any], accept: Callable[[tuple], bool], message: str) -> Callable[[str], tuple]:
    """argparse type: a comma-separated list of `convert`ed values that ``accept`` takes as a whole;
    anything else is a usage error (exit 2) saying ``message`` (its {} is the text given)."""
    def parse(text: str) -> tuple:
        try:
            values = tuple(convert(x) for x in text.split(",") if x.strip())
        except ValueError:
            values = ()
        if not values or not accept(values):
            raise argparse.ArgumentTypeError(message.format(repr(text)))
        return values
    return parse


#: '3,10,30' -> (3.0, 10.0, 30.0): distinct momenta, GeV/c
_momenta = _list_type(float, lambda vs: all(0 < v < 1e6 for v in vs) and len(set(vs)) == len(vs),
                      "expected distinct comma-separated momenta in GeV/c, e.g. 3,10,30; got {}")
#: '0,60' -> (0.0, 60.0): track angles in [0, 90) degrees
_angles = _list_type(float, lambda vs: all(0 <= v < 90 for v in vs),
                     "expected angles in [0, 90) degrees, e.g. 0,60, got {}")
#: '5,10,20' -> (5, 10, 20): hits per pseudo-track, each ≥ 2
_hits = _list_type(int, lambda vs: all(v >= 2 for v in vs),
                   "expected hits per pseudo-track (whole numbers ≥ 2), e.g. 5,10,20, got {}")
_momentum = _float_type(lambda v: 0 < v < 1e6, "a momentum in GeV/c (> 0)")
_fraction = _float_type(lambda v: 0 < v <= 1, "a number in (0, 1]")
_signal_fraction = _float_type(lambda v: 0 < v < 1, "a number in (0, 1)")
_positive_float = _float_type(lambda v: 0 < v < 1e12, "a positive number")


def _int_at_least(low: int, zero_ok: bool = False):
    """argparse type: an integer >= low (or exactly 0 when zero_ok: 'skip')."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or not (v >= low or (zero_ok and v == 0)):
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {low}" + (" (or 0 to skip)" if zero_ok else "") + f", got {text!r}")
        return v
    return parse


def cmd_evaluate(args) -> int:
    """Peak / cluster / track level evaluation on fresh simulated waveforms (sweep.physics.evaluate),
    or on a beam-test dataset without truth (sweep.physics.notruth, its report beside it)."""
    from .physics.datastep import read_params_file, require_model
    from .physics.evaluate import evaluate, format_summary

    params = read_params_file(args.params)
    require_model("peak model", args.peak_model)
    require_model("cluster model", args.cluster_model)
    if args.input is not None and _is_beamtest(args.input):
        return _evaluate_beamtest(args, params)
    if args.angles is not None or args.hits is not None:
        raise InputError("--angles and --hits apply to a beam-test dataset (sweep data import) given as --input")
    if args.prior is not None:
        raise InputError("--prior applies to a beam-test dataset (sweep data import) given as --input: a simulated "
                         "evaluation chooses the expected count's prior on its calibration tracks")
    result = evaluate(args.peak_model, args.cluster_model, out_dir=args.out, n_waveforms=args.waveforms,
                      seed=args.seed, params=params, lstm_threshold=args.threshold,
                      scan_waveforms=args.scan_waveforms, n_tracks=args.tracks, cells=args.cells,
                      momentum_gev=args.momentum, truncation=args.truncation,
                      separation_momenta=args.separation_momenta, separation_tracks=args.separation_tracks,
                      plots=not args.no_plots,
                      input_path=args.input, read_options=_read_options(args),
                      log=lambda s: print(s, file=sys.stderr))
    print(format_summary(result["summary"]))
    print(f"written to {args.out}/evaluation.json ({result['seconds']:.1f} s)")
    return EXIT_OK


def _is_beamtest(path: Path) -> bool:
    """Whether ``path`` is a beam-test dataset (`sweep data import`); raw beam-test files are
    refused with the command that imports them."""
    from .physics.beamtest import is_dataset
    from .physics.layouts import detect_layout
    from .physics.readers import ReaderError

    if path.suffix.lower() == ".npz":
        return is_dataset(path)
    try:
        layout = detect_layout(path)
    except ReaderError:
        return False
    raise InputError(f"{path}: a {layout} beam-test file: import it first (sweep data import {path} --out "
                     "data/tb.npz, with its sampling rate and channel map), then evaluate the dataset")


def _evaluate_beamtest(args, params) -> int:
    """`sweep evaluate --input TB.npz`: the no-truth evaluation (sweep.physics.notruth), then its report."""
    from .collect.report_beamtest import write_beamtest_report
    from .physics.notruth import HITS, evaluate_dataset, summary_lines

    truth_only = {"--tracks": args.tracks != 100, "--separation-tracks": args.separation_tracks != 50,
                  "--waveforms": args.waveforms != 1000, "--momentum": args.momentum != 10.0}
    given = [k for k, v in truth_only.items() if v] + [f"--{k.replace('_', '-')}" for k in _read_options(args) or {}]
    if given:
        raise InputError(f"{', '.join(given)}: not for a beam-test dataset (no simulation, no truth; the dataset "
                         "says its sampling and polarity)")
    result = evaluate_dataset(args.input, args.out, peak_model=args.peak_model, cluster_model=args.cluster_model,
                              threshold=args.threshold, params=params, angles=args.angles, hits=args.hits or HITS,
                              prior=args.prior,
                              truncation=0.7 if args.truncation is None else args.truncation, seed=args.seed,
                              plots=not args.no_plots, log=lambda s: print(s, file=sys.stderr))
    report = write_beamtest_report(args.out)
    for line in summary_lines(result):
        print(line)
    print(f"written to {args.out}/beamtest.json and {report} ({result['seconds']:.1f} s)")
    return EXIT_OK


def _read_options(args) -> dict | None:
    """The reader options of `sweep evaluate` (only with --input; the reader refuses those its file
    type does not take).

    Raises:
        InputError: a reader option without --input, or a --branch that is not WHAT=NAME.
    """
    branches = {}
    for item in args.branch or []:
        what, sep, name = item.partition("=")
        if not sep or not what or not name:
            raise InputError(f"--branch {item!r}: expected WHAT=NAME, e.g. --branch waveform=adc_samples")
        branches[what.strip()] = name.strip()
    options = {"dt_ns": args.dt_ns, "tree": args.tree, "time_unit": args.time_unit,
               "amplitude_unit": args.amplitude_unit, "waveform_scale": args.amplitude_scale,
               "branches": branches or None, "polarity": args.polarity}
    given = [k for k, v in options.items() if v is not None]
    if given and args.input is None:
        raise InputError("--dt-ns, --tree, --branch, --time-unit, --amplitude-unit, --amplitude-scale and --polarity "
                         "describe an --input file; give one")
    return {k: v for k, v in options.items() if v is not None} or None


def sweep_name(text: str) -> str:
    """argparse type: a sweep or chain name, held to the grid's rule (names.check_sweep_name);
    anything else (a path, '..') is a usage error (exit 2) before any file is read."""
    from .core import names

    try:
        return names.check_sweep_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """argparse type: the text as an integer >= 1; anything else is a usage error (exit 2)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text}")
    return value


def _version() -> str:
    from .core.version import __version__

    return __version__


def cmd_init(args) -> int:
    """`sweep init [DIR]`: write a new project (sweep.core.scaffold) and say what. Returns 0; a file
    already there raises InputError (exit 2), nothing written."""
    from .core.scaffold import init_project

    dest = args.dir if args.dir is not None else args.root
    written = init_project(dest, templates=args.templates)
    folders = sorted({p.parts[0] for p in written if len(p.parts) > 1})
    counts = ", ".join(f"{f}/ ({sum(1 for p in written if p.parts[0] == f)} files)" for f in folders)
    print(f"{dest}: a new project: {counts}, README.md, data/")
    print(f"next: cd {dest} && sweep validate grids/demo.yaml")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The `sweep` command line's parser: every command and its options; each command sets `func`,
    its cmd_* handler."""
    parser = argparse.ArgumentParser(prog="sweep", description="HTCondor hyperparameter sweeps for the "
                                     "cluster-counting peak finder (LSTM) and clusterizer (CNN).")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="project folder holding jobs/ and results/ (default: current folder)")
    parser.add_argument("--version", action="version", version=f"sweep {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="a new project: the shipped grids, site profiles and a README (overwrites nothing)")
    p.add_argument("dir", type=Path, nargs="?", default=None, help="the project folder (default: --root)")
    p.add_argument("--templates", action="store_true", help="also the templates, to edit")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("validate", help="check a grid file and print how many configurations it makes")
    p.add_argument("grid", type=Path)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("submit", help="render a grid's jobs and run them (HTCondor or --local)")
    p.add_argument("grid", type=Path)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--local", action="store_true", help="run the jobs on this machine")
    mode.add_argument("--condor", action="store_true", help="submit to the HTCondor schedd (fail if unreachable)")
    mode.add_argument("--dry-run", action="store_true", help="render in memory and print what would be submitted")
    p.add_argument("--no-dag", action="store_true", help="htcondor: queue the runs directly, without a DAG")
    p.add_argument("--wait", action="store_true", help="htcondor: wait until the sweep is finished, then collect")
    p.add_argument("--wait-timeout", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--show", action="store_true",
                   help="with --dry-run: print the submit description, the first run's values and config.yaml")
    p.add_argument("--force", action="store_true", help="rerun configurations that already have a valid result")
    p.add_argument("--cpus", type=positive_int, default=None, help="local: cores to pack jobs onto (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-collect", action="store_true", help="local: do not print the leaderboard afterwards")
    p.add_argument("--top", type=int, default=None, help="leaderboard rows to print")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("search", help="adaptive search of a grid's search: block (Optuna): a driver job in the "
                       "local universe, or here with --local")
    p.add_argument("grid", type=Path)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--local", action="store_true", help="run the driver and the trials on this machine")
    mode.add_argument("--condor", action="store_true", help="submit the driver to the schedd (fail if unreachable)")
    p.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)  # the driver job's own command
    p.add_argument("--cpus", type=positive_int, default=None, help="local: cores to run trials on (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-collect", action="store_true", help="local: do not print the leaderboard afterwards")
    p.add_argument("--top", type=int, default=None, help="leaderboard rows to print")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("chain", help="the two-step chain of a pipeline file (grids/chain.yaml): peak-finder "
                       "grid, its leader's peaks simulated, clusterizer grid, evaluation; one job of the pool, or "
                       "here with --local")
    p.add_argument("pipeline", type=Path)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--local", action="store_true", help="run the stages and their jobs on this machine")
    mode.add_argument("--condor", action="store_true", help="submit the chain job to the schedd (fail if unreachable)")
    p.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)  # the chain job's own command
    p.add_argument("--cpus", type=positive_int, default=None, help="local: cores to run jobs on (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_chain)

    p = sub.add_parser("resubmit", help="rerun a sweep's failed, held or removed runs")
    p.add_argument("sweep", type=sweep_name)
    p.add_argument("--failed", action="store_true",
                   help="only failed/held/removed runs (default: also never submitted)")
    p.add_argument("--local", action="store_true", help="rerun them on this machine")
    p.add_argument("--condor", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-dag", action="store_true")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--wait-timeout", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--cpus", type=positive_int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-collect", action="store_true")
    p.add_argument("--top", type=int, default=None)
    p.set_defaults(func=cmd_resubmit)

    p = sub.add_parser("reproduce", help="copy what one run's job received into a folder, to run it again here")
    p.add_argument("sweep", type=sweep_name)
    p.add_argument("run", type=sweep_name, help="the run's id (the first column of `sweep collect`)")
    p.add_argument("--dir", type=Path, default=None, metavar="D",
                   help="the folder to make (default reproduce/<sweep>/<run> in the project; must be empty)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("status", help="idle / running / held / done / failed / removed counts, hold reasons")
    p.add_argument("sweep", type=sweep_name, nargs="?", help="sweep or chain name (default: every sweep under jobs/)")
    p.add_argument("--watch", action="store_true", help="refresh until every run has ended")
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--json", action="store_true",
                   help="the states, running jobs' epochs and best so far as JSON (with --watch: one line per refresh)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("throttle", help="change how many jobs a sweep's running DAG may have at once (HTCondor 25.10+)")
    p.add_argument("sweep", type=sweep_name)
    p.add_argument("n", type=positive_int, metavar="N", help="the most node jobs submitted at once (≥ 1)")
    p.set_defaults(func=cmd_throttle)

    p = sub.add_parser("logs", help="a run's stdout or stderr, its job events and hold history; --follow a running job")
    p.add_argument("sweep", type=sweep_name)
    p.add_argument("run", type=sweep_name, help="the run's id (the first column of `sweep collect`)")
    p.add_argument("--err", action="store_true", help="stderr instead of stdout")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing a running job's output until it ends (Ctrl-C stops)")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("collect", help="rank a sweep's finished runs and list the failed ones")
    p.add_argument("sweep", type=sweep_name, nargs="?", help="sweep name (default: every sweep under jobs/)")
    p.add_argument("--top", type=int, default=None, help="rows to show or export (leaderboard.csv has all)")
    p.add_argument("--by", metavar="METRIC", default=None,
                   help="rank by this column (direction from the metric; unknown columns: higher first), "
                        "then by the sweep's ranking")
    p.add_argument("--filter", metavar="EXPR", default=None,
                   help="keep rows matching a condition (columns, comparisons, in, and/or/not; no Python), "
                        "e.g. 'optimizer == \"adam\" and f1 > 0.9' "
                        "(with repeats it sees the per-configuration rows: means, *_std, repeats)")
    p.add_argument("--format", choices=("table", "csv", "json", "markdown", "latex"), default=None,
                   help="output format (default: table; with --output, from its suffix)")
    p.add_argument("--output", "-o", type=Path, default=None, metavar="FILE", help="write the rows to FILE")
    p.add_argument("--per-run", action="store_true",
                   help="with repeats: one row per run instead of mean ± std per configuration")
    p.add_argument("--best", type=int, default=3, metavar="N",
                   help="copy the N best models to results/<sweep>/best/ (default 3; 0: none)")
    p.add_argument("--dag-status", type=int, default=None, help=argparse.SUPPRESS)  # the FINAL node's $(DAG_STATUS)
    p.add_argument("--failed-count", type=int, default=None, help=argparse.SUPPRESS)  # and $(FAILED_COUNT)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("report", help="write a static HTML report of a sweep (results/<sweep>/report.html)")
    p.add_argument("sweep", type=sweep_name)
    p.add_argument("--top", type=int, default=3, help="runs whose curves and ROC are drawn (default 3)")
    p.add_argument("--by", metavar="METRIC", default=None, help="rank by this column (as in collect)")
    p.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                   help="HTML file (default results/<sweep>/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="trained models for other software")
    export_sub = p.add_subparsers(dest="export_command", required=True, metavar="EXPORT_COMMAND")
    q = export_sub.add_parser("onnx", help="a sweep's run, or a chain's two leaders, as ONNX with deploy.json, "
                                            "checked against Keras (for key4hep's ONNX Runtime, sweep.deploy)")
    q.add_argument("sweep", type=sweep_name, help="the sweep or chain")
    which = q.add_mutually_exclusive_group()
    which.add_argument("--rank", type=_int_at_least(1), default=None, help="the sweep's N-th ranked run (default 1)")
    which.add_argument("--run", type=sweep_name, default=None, help="the sweep's run, by id")
    q.add_argument("--out", type=Path, default=None, help="the export's folder (default results/NAME/onnx/RUN, or "
                                                            "…/onnx/peaks and …/onnx/clusters for a chain)")
    q.add_argument("--threshold", type=_fraction, default=None,
                   help="a peak finder's working point, written for its consumers (default: the chain's, else 0.5)")
    q.set_defaults(func=cmd_export_onnx)
    q = export_sub.add_parser("tensorboard", help="a sweep's ranked runs as TensorBoard logs: per-epoch curves and "
                                                   "the HParams table (tensorboard --logdir …)")
    q.add_argument("sweep", type=sweep_name)
    q.add_argument("--out", type=Path, default=None,
                   help="the log folder (default results/SWEEP/tensorboard; replaced at each export)")
    q.set_defaults(func=cmd_export_tracking)
    q = export_sub.add_parser("mlflow", help="a sweep's ranked runs into an MLflow store: a parent run, a child per "
                                              "run with parameters, per-epoch metrics, tags and the model "
                                              "(needs sweep[mlflow])")
    q.add_argument("sweep", type=sweep_name)
    q.add_argument("--store", default=None, metavar="URI",
                   help="the tracking URI (default sqlite:///…/results/SWEEP/mlflow.db)")
    q.set_defaults(func=cmd_export_tracking)

    p = sub.add_parser("dashboard", help="optuna-dashboard on a search's study (localhost, read-only by default)")
    p.add_argument("sweep", type=sweep_name, help="the search")
    p.add_argument("--host", default="127.0.0.1", help="a loopback address or name (default 127.0.0.1; others "
                                                       "are refused: reach it from elsewhere through ssh -L)")
    p.add_argument("--port", type=_int_at_least(0), default=8080, help="the port (default 8080; 0: a free one)")
    p.add_argument("--writable", action="store_true",
                   help="let the browser change the study (notes, deletions), through the driver's lock")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("data", help="datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    q = data_sub.add_parser("simulate", help="simulate waveforms and write the training datasets (npz)")
    q.add_argument("--out", type=Path, required=True, help="output .npz file")
    q.add_argument("--waveforms", type=_int_at_least(1), default=2000)
    q.add_argument("--seed", type=_int_at_least(0), default=1)
    q.add_argument("--params", type=Path, default=None, help="YAML file of simulation parameters")
    q.add_argument("--peak-model", type=Path, default=None,
                   help="trained peak finder (.keras): the clusterization inputs are the peaks it finds "
                        "(train a clusterizer for that finder) instead of the smeared true peaks")
    q.add_argument("--threshold", type=_fraction, default=None,
                   help="with --peak-model: score threshold in (0, 1] (default 0.5)")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=cmd_simulate)
    for name, text in (("inspect", ("what beam-test files hold: per file and channel events, samples, sampling, "
                                    "polarity, encoding, pedestal, noise, flags")),
                       ("import", "beam-test files' tube channels into a dataset (npz, no labels)")):
        q = data_sub.add_parser(name, help=text)
        q.add_argument("files", type=Path, nargs="+", help="DRS4 .dat, ROOT (WaveData, IHEP) files, or "
                       "oscilloscope exports (files or folders)")
        if name == "import":
            q.add_argument("--out", type=Path, required=True, help="the dataset to write (.npz)")
        q.add_argument("--layout", choices=("wavedata", "drs4", "scope", "ihep"), default=None,
                       help="the files' layout (default: detected from their content)")
        q.add_argument("--channel-map", type=Path, default=None, metavar="YAML",
                       help="which channels are tubes (of which size), triggers, or ignored (default: "
                            "channels.yaml beside the data, else every channel is a tube)")
        q.add_argument("--sampling-rate", type=_positive_float, default=None, metavar="GS/s",
                       help="the sampling rate, where the file does not say it (WaveData, IHEP); one that "
                            "contradicts the file's is an error")
        q.add_argument("--polarity", choices=("auto", "positive", "negative"), default="auto",
                       help="which way the tubes' pulses go (default auto: from the pedestal and the skew, "
                            "always printed)")
        q.add_argument("--encoding", choices=("x742", "offset16", "volts", "mV"), default=None,
                       help="the tubes' samples: x742 12-bit codes, offset16 16-bit offset codes, volts, mV "
                            "(default: what the layout says, else detected from the codes)")
        q.set_defaults(func=cmd_data_inspect if name == "inspect" else cmd_data_import)
    p = sub.add_parser("evaluate", help="evaluate a peak finder (and clusterizer) against DERIV on fresh "
                       "simulated waveforms: peak, cluster and track (dN/dx vs dE/dx) level")
    p.add_argument("--peak-model", type=Path, default=None, help="trained LSTM peak finder (.keras); "
                   "without it only the classical DERIV / sqrt(t) baseline is evaluated")
    p.add_argument("--cluster-model", type=Path, default=None, help="trained CNN clusterizer (.keras)")
    p.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder (JSON + PNGs)")
    p.add_argument("--waveforms", type=_int_at_least(1), default=1000, help="held-out waveforms to simulate")
    p.add_argument("--seed", type=int, default=20241, help="seed of the held-out simulation")
    p.add_argument("--params", type=Path, default=None, help="YAML file of simulation parameters")
    p.add_argument("--threshold", type=_fraction, default=0.5,
                   help="LSTM score threshold of the CNN's inputs (make it the one its data was made at); the peak "
                        "counts choose their own on calibration tracks")
    p.add_argument("--scan-waveforms", type=_int_at_least(1), default=500,
                   help="waveforms used for the DERIV threshold scan")
    p.add_argument("--tracks", type=_int_at_least(2, zero_ok=True), default=100,
                   help="tracks for the dN/dx study (0: skip)")
    p.add_argument("--cells", type=_int_at_least(1), default=100, help="cells crossed per track")
    p.add_argument("--momentum", type=_momentum, default=10.0, help="track momentum, GeV/c")
    p.add_argument("--truncation", type=_fraction, default=None,
                   help="dE/dx truncated mean: fraction of the track length kept (default: chosen on calibration "
                        "tracks)")
    p.add_argument("--separation-momenta", type=_momenta, default=(3.0, 10.0, 30.0), metavar="P1,P2,...",
                   help="momenta (GeV/c) of the π/K separation (default 3,10,30)")
    p.add_argument("--separation-tracks", type=_int_at_least(2, zero_ok=True), default=50,
                   help="tracks per species and momentum for the π/K separation (0: skip)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--angles", type=_angles, default=None, metavar="A1,A2,...",
                   help="with a beam-test dataset: each file's track angle, degrees (the counts' scaling with "
                        "1/cos α is fitted)")
    p.add_argument("--prior", type=_signal_fraction, default=None, metavar="P",
                   help="with a beam-test dataset and --peak-model: also count the expected number of true peaks, "
                        "each peak weighed by its score's probability at signal fraction P (a simulated "
                        "evaluation chooses it on calibration tracks: its lstm_expected option's prior=)")
    p.add_argument("--hits", type=_hits, default=None, metavar="N1,N2,...",
                   help="with a beam-test dataset: hits per pseudo-track (default 5,10,20,50)")
    p.add_argument("--input", type=Path, default=None, help="evaluate on the waveforms of this file (.npz from "
                   "sweep.physics.readers, .h5, or .root in the CEPC layout) instead of a fresh simulation; a "
                   "beam-test dataset (sweep data import) is evaluated without truth (counts, Poisson fits, "
                   "--angles, pseudo-tracks) with its report")
    p.add_argument("--dt-ns", type=float, default=None,
                   help="with --input: sampling interval, ns, for a .root/.h5 file that does not say it (a "
                        "dt_ns or sampling_rate branch/attribute); required then, never assumed")
    p.add_argument("--tree", default=None, help="with a .root --input: the tree (default sim)")
    p.add_argument("--branch", action="append", metavar="WHAT=NAME",
                   help="with a .root --input: the branch holding WHAT (waveform, time, tag, clusters, "
                        "momentum, dt_ns, sampling_rate; defaults wf_i, time, tag, ncls, mom, dt_ns, "
                        "sampling_rate); repeat for several")
    p.add_argument("--time-unit", choices=("ps", "ns", "us", "s", "sample"), default=None,
                   help="with a .root --input: unit of the truth times (sample: sample indices, as in the CEPC "
                        "Garfield++ files; default ns, but whole numbers inside the waveform are refused "
                        "until the unit is given)")
    p.add_argument("--polarity", choices=("positive", "negative"), default=None,
                   help="with a .root or .h5 --input: which way its pulses go (negative: read flipped, as IHEP's "
                        "beam-test files need); by default positive, and waveforms whose pulses look negative "
                        "are refused until it is given")
    amplitude = p.add_mutually_exclusive_group()
    amplitude.add_argument("--amplitude-unit", choices=("uV", "mV", "V"), default=None,
                           help="with --input: unit of the file's waveforms (default mV)")
    amplitude.add_argument("--amplitude-scale", type=_float_type(lambda v: 0 < v < 1e12, "a positive factor"),
                           default=None, metavar="MV_PER_UNIT",
                           help="with --input: mV per unit of the file's waveforms (e.g. the ADC LSB in mV "
                                "for counts). The models see each waveform in units of its own noise, so "
                                "this only sets the figures sweep prints and compares with training")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `sweep` command line `argv` (None: sys.argv[1:]).

    Returns:
        The exit status: 0; for a SweepError its kind's (EXIT_STATUS: 2 for what the user wrote,
        else 1), after printing it; 130 when interrupted. A usage error exits 2 through argparse.
        Started as root: sweep first becomes the job owner or refuses (sweep.submit.identity.run_as_owner),
        before it parses `argv` or touches a file.
    """
    from .submit.identity import run_as_owner

    try:
        run_as_owner(sys.argv[1:] if argv is None else list(argv))
        args = build_parser().parse_args(argv)
        args.root = args.root.resolve()
        return args.func(args)
    except SweepError as exc:
        status = next(code for kind, code in EXIT_STATUS if isinstance(exc, kind))
        console = _console(stderr=True)
        if isinstance(exc, GridError):
            console.print(f"[bold red]{len(exc.issues)} problem(s) in the grid file; nothing was written:[/]")
            for issue in exc.issues:  # unwrapped, so that each stays one `file:line:column: key: ...` line
                console.print(str(issue), markup=False, highlight=False, soft_wrap=True)
        else:
            from rich.text import Text

            from .core.errors import printable

            # one line as before, and no markup: the message may hold [brackets] or a grid's value
            console.print(Text.assemble(("error:", "bold red"), " ", printable(str(exc))), highlight=False,
                          soft_wrap=True)
        return status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
