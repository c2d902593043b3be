"""A sweep's end, told: the small JSON summary a grid's `notify.webhook` is posted (sweep, counts,
best run and metric, where the leaderboard and the report are), and the DAG's FINAL node's POST
script that posts it (`python -m sweep.collect.notify`).

HTCondor itself mails (`notification`, `notify_user` on the DAGMan job: sweep.submit); this
module only posts the webhook. A post that fails is logged, never raised: a sweep's result does
not depend on a web service. The URL is read from the grid file when the sweep ends (the
manifest records where it is); it is never written into a submit file, a DAG file or a log.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import GridError, SweepError, printable
from ..core.gridspec import NotifySpec
from ..core.jobsettings import notify_section
from ..core.names import LEADERBOARD, REPORT, SweepPaths
from ..core.validation import Validator, load_yaml, read_text
from ..core.version import __version__

#: Seconds a webhook post may take (connect and answer), once.
POST_TIMEOUT_S = 10.0
#: The summary's format; a receiver can tell a later one by it.
SCHEMA = "sweep.notify/1"
#: Where the FINAL node's POST script writes what it did (the DAG's folder).
NOTIFY_LOG = "notify.log"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: urllib would repeat the POST as a GET without its body and
    report the GET's answer as the post's (the redirect's status is logged instead)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def host_of(url: str) -> str:
    """The URL's scheme and host, all a log line says of a webhook (its path may be its secret)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def post(url: str, body: dict[str, Any], log: Callable[[str], Any] = print, timeout: float = POST_TIMEOUT_S) -> bool:
    """POST `body` as JSON to `url`, once, within `timeout` seconds. Returns whether the receiver
    answered 2xx; a failure is logged (with the URL's host only), never raised."""
    data = json.dumps(body, sort_keys=True).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"sweep/{__version__}"})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception as exc:  # noqa: BLE001 - URLError, a timeout, a refused connection, an answer not HTTP
        log(f"notify: the webhook at {host_of(url)} could not be reached ({type(exc).__name__}): "
            f"{printable(str(exc))[:200]}")
        return False
    if not 200 <= status < 300:
        log(f"notify: the webhook at {host_of(url)} answered HTTP {status}")
        return False
    log(f"notify: summary of {body.get('sweep')} posted to the webhook at {host_of(url)} (HTTP {status})")
    return True


def envelope(sweep: str, kind: str) -> dict[str, Any]:
    """What every summary starts with: its schema, the sweep (or chain) and its kind, the host and
    time it was sent from, and sweep's version."""
    return {"schema": SCHEMA, "sweep": sweep, "kind": kind, "host": socket.getfqdn(),
            "sent_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "sweep_version": __version__}


def summary(sweep: str, root: Path, *, kind: str = "sweep", failed: bool | None = None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON summary of a sweep as it stands: its runs counted by state, its best run by the
    first ranking metric, where its leaderboard and report are (on `host`), and `status`
    "complete" or "error" (`failed`; None: error when a run has no valid result)."""
    from .gather import collect

    paths = SweepPaths(root.resolve())
    results = paths.results(sweep)
    body = envelope(sweep, kind)
    try:
        board = collect(sweep, root, write_csv=False, read_only=True)
    except SweepError as exc:
        body.update(status="error", runs=0, counts={}, best=None, problem=printable(str(exc))[:300])
        return body
    counts: dict[str, int] = {}
    if len(board.table):
        counts["ok"] = len(board.table)
    for outcome in board.problems:
        counts[str(outcome.state)] = counts.get(str(outcome.state), 0) + 1
    if board.pruned:
        counts["pruned"] = len(board.pruned)
    best = None
    if len(board.table) and board.ranking:
        row = board.table.iloc[0]
        metric = board.ranking[0][0]
        value = row.get(metric)
        best = {"run_id": str(row["run_id"]), "name": str(row.get("name", "")), "metric": metric,
                "direction": board.ranking[0][1],
                "value": None if value is None or value != value else float(value)}
    report = results / REPORT
    leaderboard = results / LEADERBOARD
    body.update(runs=board.total, counts=counts, best=best,
                status="error" if (failed if failed is not None else bool(board.problems)) else "complete",
                leaderboard=str(leaderboard) if leaderboard.is_file() else None,
                report=str(report) if report.is_file() else None,
                report_command=f"sweep --root {paths.root} report {sweep}")
    body.update(extra or {})
    return body


def tell(notify: NotifySpec | None, body: dict[str, Any], log: Callable[[str], Any] = print) -> bool | None:
    """Post `body` to the webhook of `notify` when its `on` asks for this end (`body["status"]`).
    Returns None when nothing was to be posted, else whether the post was received."""
    if notify is None or not notify.posts(body.get("status") == "error"):
        return None
    return post(notify.webhook, body, log)


def tell_end(notify: NotifySpec | None, sweep: str, root: Path, *, kind: str, failed: bool,
             extra: dict[str, Any] | None = None, log: Callable[[str], Any] = print) -> bool | None:
    """At the end of a search or a chain (`kind`): post the summary of `sweep` to the webhook of
    `notify` when its `on` asks for an end with (`failed`) or without failures. Returns None when
    nothing was to be posted, else whether the post was received; never raises."""
    if notify is None or not notify.posts(failed):
        return None
    try:
        body = summary(sweep, root, kind=kind, failed=failed, extra=extra)
    except Exception as exc:  # noqa: BLE001 - a notification never fails what it reports on
        log(f"notify: cannot summarise {sweep}: {type(exc).__name__}: {printable(str(exc))[:300]}")
        return False
    return post(notify.webhook, body, log)


def grid_notify(grid: Path, root: Path, log: Callable[[str], Any] = print) -> NotifySpec | None:
    """The notify: block of the grid file `grid` as it is now, validated as when the grid was
    (only that block is read: the grid's dataset may be gone by the end); None when it has none,
    or when the file or the block cannot be used (logged)."""
    try:
        located = load_yaml(read_text(grid, "grid file"), str(grid), "grid file")
    except GridError as exc:
        log(f"notify: cannot read the grid {grid}: {exc}")
        return None
    doc = located.data if isinstance(located.data, dict) else {}
    v = Validator(str(grid), located, root)
    spec = notify_section(v, doc.get("notify"))
    if v.issues:  # its messages may quote the URL, which no log may hold: `sweep validate` shows them
        log(f"notify: the grid's notify block is not valid now (`sweep validate {grid}` says why): nothing sent")
        return None
    return spec


def final_node(root: Path, sweep: str, node_return: int, dag_status: int | None, failed_count: int | None,
               log: Callable[[str], Any] = print) -> int:
    """The FINAL node's POST script: post the sweep's summary to its grid's webhook, and exit as
    the collect job did (0 when it did, else 1), so the DAG's result is not changed by it."""
    from ..records.manifest import read_manifest

    manifest = read_manifest(SweepPaths(root.resolve()).jobs(sweep))
    grid = root / manifest.grid if manifest is not None and manifest.grid else None  # absolute as recorded
    notify = grid_notify(grid, root, log) if grid is not None else None
    if notify is None or notify.webhook is None:
        log(f"notify: sweep {sweep}'s grid ({grid or 'not recorded'}) names no webhook now: nothing posted")
    else:
        failed = (dag_status or 0) != 0 or (failed_count or 0) > 0
        body = summary(sweep, root, failed=failed,
                       extra={"dag_status": dag_status, "failed_nodes": failed_count, "collect_exit": node_return})
        if tell(notify, body, log) is None:
            log(f"notify: the sweep ended {body['status']}, and notify.on ({', '.join(notify.on)}) does not ask "
                "for that: nothing posted")
    return 0 if node_return == 0 else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m sweep.collect.notify --root ROOT --sweep NAME [--log FILE] RETURN DAG_STATUS
    FAILED_COUNT`: what the DAG's FINAL node runs as its POST script (DAGMan's $RETURN,
    $DAG_STATUS and $FAILED_COUNT)."""
    parser = argparse.ArgumentParser(prog="python -m sweep.collect.notify", description=main.__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--sweep", required=True)
    parser.add_argument("--log", type=Path, default=None, help="append what was done to this file")
    parser.add_argument("node_return", type=int)
    parser.add_argument("dag_status", type=int, nargs="?")
    parser.add_argument("failed_count", type=int, nargs="?")
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"
        print(line, flush=True)
        if args.log is not None:
            try:
                with open(args.log, "a", encoding="utf-8") as out:
                    out.write(line + "\n")
            except OSError:
                pass

    try:
        return final_node(args.root, args.sweep, args.node_return, args.dag_status, args.failed_count, log)
    except Exception as exc:  # noqa: BLE001 - a notification never fails the DAG
        log(f"notify: {type(exc).__name__}: {printable(str(exc))[:300]}")
        return 0 if args.node_return == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
