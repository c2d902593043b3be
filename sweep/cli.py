"""The `sweep` command: parses arguments and delegates. Imports stay inside the handlers so
that `sweep --help` is fast and the CLI never imports TensorFlow."""

from __future__ import annotations

import argparse
import sys
from typing import Callable
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # a pipe or a CI log is not 80 columns wide: do not squeeze the leaderboard
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, width=width)


def cmd_validate(args) -> int:
    from .core.expand import count_points, expand
    from .core.grid import load_grid

    spec = load_grid(args.grid, args.root)
    runs = expand(spec)
    configs = len({r.config_id for r in runs})
    extra = f" × {spec.repeats} repeats = {len(runs)} runs" if spec.repeats > 1 else ""
    sampled = f" (sampled from {count_points(spec)} grid points)" if spec.sample else ""
    print(f"{args.grid}: valid; sweep '{spec.name}' ({spec.model}) expands to {configs} configurations"
          f"{sampled}{extra}")
    return EXIT_OK


def cmd_submit(args) -> int:
    from .core.render import relative_to_root
    from .project import ensure_dataset, prepare, record_submission, write_rendered
    from .results import has_valid_result

    console = _console()
    prepared = prepare(args.grid, args.root)
    spec, rendered = prepared.spec, prepared.rendered
    required = [m for m, _ in spec.ranking]
    only = set(getattr(args, "only", None) or [])  # `sweep resubmit` names the runs to rerun
    if only:
        todo = [r for r in rendered.runs if r.run.run_id in only]
        if len(todo) < len(only):
            console.print(f"[yellow]{len(only) - len(todo)} run(s) to resubmit are no longer in {args.grid} "
                          "(the grid changed); they are left as they are[/]")
    else:
        todo = [r for r in rendered.runs
                if args.force or not has_valid_result(rendered.results_dir, r.run.run_id, required)]
    done = len(rendered.runs) - len(todo)
    if args.dry_run:
        console.print(f"[bold]dry run[/]: sweep '{spec.name}' has {len(rendered.runs)} runs; {done} already have a "
                      f"valid result; would submit {len(todo)} (nothing written)")
        for r in todo:
            console.print(f"  {r.run.run_id}  {r.run.name}  -> {relative_to_root(r.submit_path, args.root)}")
        if todo and args.show:
            console.rule(f"{relative_to_root(todo[0].submit_path, args.root)}")
            console.print(todo[0].submit_text, markup=False)
        return EXIT_OK
    backend = _choose_backend(args, console)  # before writing anything: an unreachable pool writes nothing
    skipped = {}
    if backend.name == "htcondor":
        todo, skipped = backend.skip_queued(rendered, todo)
    note = ensure_dataset(spec, progress=not args.no_progress)
    if note:
        console.print(note)
    jobs_dir = write_rendered(prepared, args.grid)
    console.print(f"rendered {len(rendered.runs)} runs into {relative_to_root(jobs_dir, args.root)}/ "
                  f"({done} already done, {len(skipped)} queued or running, {len(todo)} to submit)")
    if not todo:
        console.print("nothing to submit: every configuration has a valid result or is queued (use --force to "
                      "rerun finished ones)")
        if skipped and getattr(args, "wait", False):  # what is queued is this sweep's: wait for it
            _wait_and_collect(args, spec.name, console)
        return EXIT_OK
    report = backend.submit(rendered, todo)
    if report.backend == "local":
        record_submission(jobs_dir, {"backend": report.backend, "runs": report.submitted})
        codes = report.details.get("exit_codes", {})
        failed = sum(1 for c in codes.values() if c != 0)
        console.print(f"local: {len(codes) - failed} of {len(codes)} runs finished, {failed} failed")
        if not args.no_collect:
            args.sweep = spec.name
            cmd_collect(args)
        return EXIT_ERROR if failed and failed == len(codes) else EXIT_OK
    d = report.details
    what = f"DAG (cluster {d['cluster']})" if d["mode"] == "dag" else f"cluster {d['cluster']}"
    console.print(f"htcondor: submitted {len(report.submitted)} runs to {backend_pool()} as {what}; "
                  f"follow with `sweep status {spec.name}`")
    if args.wait:
        _wait_and_collect(args, spec.name, console)
    return EXIT_OK


def _wait_and_collect(args, sweep: str, console) -> None:
    from .status import wait_for

    status = wait_for(sweep, args.root, console, timeout=args.wait_timeout)
    counts = status.counts()
    console.print(f"{sweep}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    if not args.no_collect:
        args.sweep = sweep
        cmd_collect(args)


def backend_pool() -> str:
    from .backends.htcondor import pool_name

    return pool_name()


def _choose_backend(args, console):
    from .backends.local import LocalBackend

    if args.local:
        return LocalBackend(cpus=args.cpus, progress=not args.no_progress)
    from .backends import htcondor

    if args.condor:
        return htcondor.HTCondorBackend(use_dag=not args.no_dag, schedd=htcondor.connect())
    try:
        schedd = htcondor.connect(timeout=5)
    except Exception as exc:  # noqa: BLE001 - no pool here: the local backend is the default
        console.print(f"[yellow]no HTCondor schedd reachable ({str(exc).split(': ')[0]}); running on this machine "
                      "with the local backend (--local says so, --condor insists on a pool)[/]")
        return LocalBackend(cpus=args.cpus, progress=not args.no_progress)
    console.print(f"using the HTCondor backend: schedd of {htcondor.pool_name()}")
    return htcondor.HTCondorBackend(use_dag=not args.no_dag, schedd=schedd)


def cmd_resubmit(args) -> int:
    import hashlib

    from .core.errors import SweepError
    from .project import read_manifest, sweep_paths
    from .status import sweep_status

    manifest = read_manifest(sweep_paths(args.root).jobs(args.sweep))
    if manifest is None:
        raise SweepError(f"no sweep '{args.sweep}' under {args.root / 'jobs'}")
    on_pool = any(s.get("backend") == "htcondor" for s in manifest.get("submissions", []))
    status = sweep_status(args.sweep, args.root, query_schedd=True)
    if on_pool and status.pool_note and not args.local:
        # without the schedd we cannot tell held or queued jobs from lost ones: rerunning could duplicate
        raise SweepError(f"cannot resubmit sweep '{args.sweep}' without its schedd ({status.pool_note})")
    grid = Path(manifest["grid"])
    if not grid.is_file():
        raise SweepError(f"the sweep's grid file {grid} is gone; submit the grid again instead")
    if hashlib.sha256(grid.read_bytes()).hexdigest() != manifest.get("grid_sha256"):
        _console(stderr=True).print(f"[yellow]{grid} changed since it was submitted: runs are matched by id, "
                                    "and configurations that changed are new runs (submit the grid for those)[/]")
    wanted = {"failed", "held", "removed"} if args.failed else {"failed", "held", "removed", "not run"}
    runs = [r.run_id for r in status.runs if r.state in wanted]
    if not runs:
        print(f"nothing to resubmit in sweep '{args.sweep}'")
        return EXIT_OK
    status.remove_held(runs)
    args.condor = args.condor or (on_pool and not args.local)  # where it ran before, unless told otherwise
    args.grid, args.only, args.force, args.dry_run, args.show = grid, runs, True, False, False
    return cmd_submit(args)


def cmd_status(args) -> int:
    from .status import print_status, watch

    if args.watch:
        return watch(args.sweep, args.root, _console(), interval=args.interval)
    print_status(args.sweep, args.root, _console())
    return EXIT_OK


def cmd_collect(args) -> int:
    from .collect import collect, list_sweeps
    from .core.errors import SweepError
    from .fsutil import atomic_write_text
    from .leaderboard import copy_best, export, infer_format, print_selection, select

    sweeps = [args.sweep] if args.sweep else list_sweeps(args.root)
    if not sweeps:
        raise SweepError(f"no sweeps under {args.root / 'jobs'} (run `sweep submit GRID` first)")
    output = getattr(args, "output", None)
    if output is not None and len(sweeps) > 1:
        raise SweepError("--output needs one sweep: name it (sweep collect SWEEP --output FILE)")
    fmt = infer_format(getattr(args, "format", None), output)
    console = _console()
    for name in sweeps:
        board = collect(name, args.root)
        sel = select(board, by=getattr(args, "by", None), top=getattr(args, "top", None),
                     where=getattr(args, "filter", None), per_run=getattr(args, "per_run", False))
        best = getattr(args, "best", 3)
        try:
            best_dir = copy_best(board, best, by=getattr(args, "by", None)) if best else None
        except OSError as exc:  # a read-only results folder must not stop the leaderboard
            best_dir = None
            _console(stderr=True).print(f"[yellow]could not copy the best models: {exc}[/]")
        if output is not None:
            atomic_write_text(output, export(board, sel, fmt))
            console.print(f"{len(sel.frame)} row(s) of sweep {name} written to {output} ({fmt})")
        elif fmt == "table":
            print_selection(board, sel, console, root=args.root)
        else:
            sys.stdout.write(export(board, sel, fmt))
        if best_dir is not None and (output is not None or fmt == "table"):
            from .core.render import relative_to_root

            copied = sum(1 for d in best_dir.iterdir() if d.is_dir())
            console.print(f"best {copied} model(s) copied to {relative_to_root(best_dir, args.root)}/")
    return EXIT_OK


def cmd_report(args) -> int:
    from .core.render import relative_to_root
    from .report_html import write_report

    path = write_report(args.sweep, args.root, top=args.top, by=args.by, output=args.output)
    print(f"report written to {relative_to_root(path, args.root)}")
    return EXIT_OK


def _read_sim_params(path: Path | None) -> dict:
    """The simulation parameters of a YAML file, validated (an InputError names the file)."""
    if path is None:
        return {}
    import yaml

    from .core.errors import InputError
    from .data.simulate import SimulationParams

    try:
        data = yaml.safe_load(path.read_text()) or {}
        SimulationParams.from_dict(data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None
    return data


def cmd_simulate(args) -> int:
    from .data.simulate import simulate_to_file

    params = _read_sim_params(args.params)
    if args.peak_model is not None and not args.peak_model.is_file():
        from .core.errors import SweepError

        raise SweepError(f"peak model not found: {args.peak_model}")
    if args.threshold is not None and args.peak_model is None:
        from .core.errors import InputError

        raise InputError("--threshold applies to the peaks of --peak-model; give the model too")
    summary = simulate_to_file(args.out, args.waveforms, args.seed, params, progress=not args.no_progress,
                               peak_model=args.peak_model,
                               peak_threshold=0.5 if args.threshold is None else args.threshold)
    print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()))
    return EXIT_OK


def _momenta(text: str) -> tuple[float, ...]:
    """'3,10,30' -> (3.0, 10.0, 30.0); anything else is a usage error (exit 2)."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 < v < 1e6 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(
            f"expected distinct comma-separated momenta in GeV/c, e.g. 3,10,30; got {text!r}")
    return values


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


_momentum = _float_type(lambda v: 0 < v < 1e6, "a momentum in GeV/c (> 0)")
_fraction = _float_type(lambda v: 0 < v <= 1, "a number in (0, 1]")


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
    """Peak / cluster / track level evaluation on fresh simulated waveforms (sweep.evaluate)."""
    from .evaluate import evaluate, format_summary

    params = _read_sim_params(args.params)
    for label, path in (("peak model", args.peak_model), ("cluster model", args.cluster_model)):
        if path is not None and not path.is_file():
            from .core.errors import SweepError

            raise SweepError(f"{label} not found: {path}")
    result = evaluate(args.peak_model, args.cluster_model, out_dir=args.out, n_waveforms=args.waveforms,
                      seed=args.seed, params=params, lstm_threshold=args.threshold,
                      scan_waveforms=args.scan_waveforms, n_tracks=args.tracks, cells=args.cells,
                      momentum_gev=args.momentum, truncation=args.truncation,
                      separation_momenta=args.separation_momenta, separation_tracks=args.separation_tracks,
                      plots=not args.no_plots,
                      input_path=args.input, read_options={"dt_ns": args.dt_ns} if args.dt_ns else None,
                      log=lambda s: print(s, file=sys.stderr))
    print(format_summary(result["summary"]))
    print(f"written to {args.out}/evaluation.json ({result['seconds']:.1f} s)")
    return EXIT_OK


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep", description="HTCondor hyperparameter sweeps for the "
                                     "cluster-counting peak finder (LSTM) and clusterizer (CNN).")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="project folder holding jobs/ and results/ (default: current folder)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    p.add_argument("--show", action="store_true", help="with --dry-run: print the first submit file")
    p.add_argument("--force", action="store_true", help="rerun configurations that already have a valid result")
    p.add_argument("--cpus", type=positive_int, default=None, help="local: cores to pack jobs onto (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-collect", action="store_true", help="local: do not print the leaderboard afterwards")
    p.add_argument("--top", type=int, default=None, help="leaderboard rows to print")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("resubmit", help="rerun a sweep's failed, held or removed runs")
    p.add_argument("sweep")
    p.add_argument("--failed", action="store_true", help="only failed/held/removed runs (default: also never submitted)")
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

    p = sub.add_parser("status", help="idle / running / held / done / failed / removed counts, hold reasons")
    p.add_argument("sweep", nargs="?", help="sweep name (default: every sweep under jobs/)")
    p.add_argument("--watch", action="store_true", help="refresh until every run has ended")
    p.add_argument("--interval", type=float, default=5.0)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("collect", help="rank a sweep's finished runs and list the failed ones")
    p.add_argument("sweep", nargs="?", help="sweep name (default: every sweep under jobs/)")
    p.add_argument("--top", type=int, default=None, help="rows to show or export (leaderboard.csv has all)")
    p.add_argument("--by", metavar="METRIC", default=None,
                   help="rank by this column (direction from the metric; unknown columns: higher first), "
                        "then by the sweep's ranking")
    p.add_argument("--filter", metavar="EXPR", default=None,
                   help="keep rows matching a pandas query, e.g. 'optimizer == \"adam\" and f1 > 0.9' "
                        "(with repeats it sees the per-configuration rows: means, *_std, repeats)")
    p.add_argument("--format", choices=("table", "csv", "json", "markdown", "latex"), default=None,
                   help="output format (default: table; with --output, from its suffix)")
    p.add_argument("--output", "-o", type=Path, default=None, metavar="FILE", help="write the rows to FILE")
    p.add_argument("--per-run", action="store_true",
                   help="with repeats: one row per run instead of mean ± std per configuration")
    p.add_argument("--best", type=int, default=3, metavar="N",
                   help="copy the N best models to results/<sweep>/best/ (default 3; 0: none)")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("report", help="write a static HTML report of a sweep (results/<sweep>/report.html)")
    p.add_argument("sweep")
    p.add_argument("--top", type=int, default=3, help="runs whose curves and ROC are drawn (default 3)")
    p.add_argument("--by", metavar="METRIC", default=None, help="rank by this column (as in collect)")
    p.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                   help="HTML file (default results/<sweep>/report.html)")
    p.set_defaults(func=cmd_report)

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
    p = sub.add_parser("evaluate", help="evaluate a peak finder (and clusterizer) against DERIV on fresh "
                       "simulated waveforms: peak, cluster and track (dN/dx vs dE/dx) level")
    p.add_argument("--peak-model", type=Path, default=None, help="trained LSTM peak finder (.keras); "
                   "without it only the classical DERIV / sqrt(t) baseline is evaluated")
    p.add_argument("--cluster-model", type=Path, default=None, help="trained CNN clusterizer (.keras)")
    p.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder (JSON + PNGs)")
    p.add_argument("--waveforms", type=_int_at_least(1), default=1000, help="held-out waveforms to simulate")
    p.add_argument("--seed", type=int, default=20241, help="seed of the held-out simulation")
    p.add_argument("--params", type=Path, default=None, help="YAML file of simulation parameters")
    p.add_argument("--threshold", type=_fraction, default=0.5, help="LSTM score threshold")
    p.add_argument("--scan-waveforms", type=_int_at_least(1), default=500, help="waveforms used for the DERIV threshold scan")
    p.add_argument("--tracks", type=_int_at_least(2, zero_ok=True), default=100,
                   help="tracks for the dN/dx study (0: skip)")
    p.add_argument("--cells", type=_int_at_least(1), default=100, help="cells crossed per track")
    p.add_argument("--momentum", type=_momentum, default=10.0, help="track momentum, GeV/c")
    p.add_argument("--truncation", type=_fraction, default=0.7, help="dE/dx truncated mean: fraction kept")
    p.add_argument("--separation-momenta", type=_momenta, default=(3.0, 10.0, 30.0), metavar="P1,P2,...",
                   help="momenta (GeV/c) of the π/K separation (default 3,10,30)")
    p.add_argument("--separation-tracks", type=_int_at_least(2, zero_ok=True), default=50,
                   help="tracks per species and momentum for the π/K separation (0: skip)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--input", type=Path, default=None, help="evaluate on the waveforms of this file (.npz from "
                   "sweep.data.readers, .h5, or .root in the CEPC layout) instead of a fresh simulation")
    p.add_argument("--dt-ns", type=float, default=None, help="with --input: sampling interval, ns (.root/.h5)")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.root = args.root.resolve()
    from .core.errors import GridError, InputError, SweepError

    try:
        return args.func(args)
    except GridError as exc:
        console = _console(stderr=True)
        console.print(f"[bold red]{len(exc.issues)} problem(s) in the grid file; nothing was written:[/]")
        for issue in exc.issues:
            console.print(str(issue), markup=False)
        return EXIT_BAD_INPUT
    except SweepError as exc:
        _console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return EXIT_ERROR
    except InputError as exc:
        console = _console(stderr=True)
        console.print("[bold red]error:[/]", end=" ")
        console.print(str(exc), highlight=False, markup=False)  # the message may hold [brackets]
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
