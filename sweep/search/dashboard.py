"""`sweep dashboard SWEEP`: optuna-dashboard on a search's study, on this machine's loopback.

The journal (results/<sweep>/study.journal) is opened by the one function that opens it for the
driver, collect and report (sweep.records.study.storage): a JournalFileBackend whose lock is
Optuna's JournalFileOpenLock (O_EXCL on <journal>.lock, NFS-safe). optuna-dashboard opening a
journal path by itself would take a JournalFileSymlinkLock instead, which is not the lock the
driver takes, so it is always handed the storage object, never the path.

The driver is the journal's only writer: the dashboard is read-only (a request other than GET,
HEAD or OPTIONS is answered 403 before optuna-dashboard sees it: no rename, deletion, note or
tell from the browser) unless `writable` is asked for, and then what it writes goes through the
driver's lock. It has no authentication, so it listens on a loopback address only (127.0.0.1,
::1, or a name that resolves to loopback addresses only); from another machine, tunnel to it
(``ssh -L 8080:127.0.0.1:8080 HOST``).

optuna-dashboard is imported when a dashboard is opened, not when sweep is.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from ..core.errors import InputError, ResultsError, SweepError
from ..core.names import JOBS_DIR, STUDY_JOURNAL, SweepPaths, check_sweep_name
from ..records.study import storage

if TYPE_CHECKING:
    from optuna.storages import JournalStorage

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: What optuna-dashboard needs to be installed as (named in the error when it is not).
PACKAGE = "optuna-dashboard"
#: The methods a read-only dashboard passes on (the browser's reads).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def journal_of(sweep: str, root: Path) -> Path:
    """The study journal of search `sweep` under the project folder `root`.

    Args:
        sweep: the sweep's name (a grid's `sweep:`).
        root: the project folder (holds jobs/ and results/).

    Returns:
        results/<sweep>/study.journal, which exists.

    Raises:
        InputError: `sweep` is not a valid sweep name.
        ResultsError: the project has no such sweep, or the sweep has no study journal (a grid
            sweep, or a search whose driver has not started yet).
    """
    try:
        check_sweep_name(sweep)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    paths = SweepPaths(root.resolve())
    journal = paths.results(sweep) / STUDY_JOURNAL
    if journal.is_file():
        return journal
    if not paths.jobs(sweep).is_dir() and not paths.results(sweep).is_dir():
        raise ResultsError(f"no sweep '{sweep}' under {paths.root / JOBS_DIR} (start a search with "
                           "`sweep search GRID`)")
    raise ResultsError(f"sweep '{sweep}' is not a search, or its driver has not started yet: no study journal "
                       f"{journal} (the dashboard shows an Optuna search's study; a grid sweep has none: "
                       f"see `sweep status {sweep}`)")


def open_journal(sweep: str, root: Path) -> JournalStorage:
    """The storage of search `sweep`'s study, opened as the driver opens it: the same storage
    function (sweep.records.study.storage), so writes take the driver's lock (JournalFileOpenLock
    on <journal>.lock). Nothing is created: the journal must exist and hold the sweep's study.

    Args:
        sweep: the sweep's name, which is also its study's name.
        root: the project folder.

    Returns:
        The Optuna JournalStorage of results/<sweep>/study.journal.

    Raises:
        InputError: `sweep` is not a valid sweep name.
        ResultsError: no such sweep, no journal (not a search), or a journal that holds no
            study named after the sweep.
    """
    journal = journal_of(sweep, root)
    store = storage(journal)
    try:
        store.get_study_id_from_name(sweep)
    except KeyError:
        raise ResultsError(f"{journal} holds no study '{sweep}'") from None
    return store


def url(host: str, port: int, study_id: int | None = None) -> str:
    """The address to open in a browser: the dashboard's page, or one study's.

    Args:
        host: the address the dashboard listens on (an IPv6 address is bracketed).
        port: its port.
        study_id: the study's id in the storage (optuna-dashboard's /dashboard/studies/<id>), or
            None for the list of studies.

    Returns:
        "http://127.0.0.1:8080/dashboard/studies/0", or ".../dashboard" without a study.
    """
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/dashboard" + ("" if study_id is None else f"/studies/{study_id}")


def loopback(host: str) -> tuple[socket.AddressFamily, str]:
    """The address to bind for `host`, which must be this machine's loopback.

    Args:
        host: an IP address or a name (every address the name resolves to must be loopback).

    Returns:
        The address family and the address to bind: the first IPv4 address `host` resolves to,
        else its first IPv6 one ("localhost" binds 127.0.0.1 where IPv6 is off).

    Raises:
        InputError: `host` does not resolve, or resolves to an address that is not loopback
            (0.0.0.0 and :: included: the dashboard has no authentication).
    """
    refusal = (f"--host {host!r}: the dashboard listens on this machine's loopback only (127.0.0.1 or ::1; it has "
               "no authentication); from another machine, tunnel to it: ssh -L 8080:127.0.0.1:8080 THIS-HOST")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM) if host else []
    except (socket.gaierror, UnicodeError):
        infos = []
    found = [(info[0], str(info[4][0])) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not found or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for _, a in found):
        raise InputError(refusal)
    return sorted(found, key=lambda f: f[0] != socket.AF_INET)[0]


def read_only(app: WSGIApp) -> WSGIApp:
    """`app` answering 403 (JSON {"reason": ...}) to every request that is not a read.

    Args:
        app: a WSGI application (optuna-dashboard's).

    Returns:
        The WSGI application that passes GET, HEAD and OPTIONS requests on to `app`.
    """
    body = json.dumps({"reason": "this dashboard is read-only: the search's driver is the only writer of its "
                                 "study (sweep dashboard --writable allows notes and edits)"}).encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() in READ_METHODS:
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return guarded


def loopback_only(app: WSGIApp) -> WSGIApp:
    """`app` answering 403 to a request whose Host header is not this machine's loopback (a
    loopback address or `localhost`, any port): a web page elsewhere that makes a browser resolve
    its own name to 127.0.0.1 (DNS rebinding) reaches the port, but not the study; and to a write
    whose Origin (the page that sent it) is not loopback either (a cross-site POST, --writable).

    Args:
        app: a WSGI application.

    Returns:
        The WSGI application that passes on requests for a loopback host only.
    """
    body = json.dumps({"reason": "this dashboard answers requests for localhost only"}).encode()

    def is_loopback(host: str) -> bool:
        name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0] \
            if host.count(":") == 1 else host
        try:
            return name == "localhost" or ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        ok = is_loopback(str(environ.get("HTTP_HOST", "")).strip())
        origin = str(environ.get("HTTP_ORIGIN", "")).strip()
        if ok and origin and environ.get("REQUEST_METHOD", "GET").upper() not in READ_METHODS:
            # a write sent by a page of another site (a browser names it): refused (--writable)
            ok = is_loopback(origin.split("://", 1)[-1].split("/", 1)[0])
        if ok:
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return guarded


def dashboard_app(store: JournalStorage, *, writable: bool = False) -> WSGIApp:
    """optuna-dashboard's WSGI application on `store`.

    Args:
        store: the study's storage (open_journal).
        writable: let the browser write to the study (notes, user attributes, tell, rename,
            delete); False answers every write 403.

    Returns:
        The WSGI application, answering requests for a loopback host only (loopback_only).

    Raises:
        SweepError: optuna-dashboard is not installed (the message names the package).
    """
    try:
        from optuna_dashboard import wsgi
    except ImportError:
        raise SweepError(f"sweep dashboard needs the {PACKAGE} package, which is not installed: "
                         f"python -m pip install {PACKAGE}") from None
    app = wsgi(store)
    return loopback_only(app if writable else read_only(app))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: one line per request of a polling browser page is noise on the terminal."""


class DashboardServer(ThreadingMixIn, WSGIServer):
    """The dashboard's HTTP server (the standard library's WSGI server, one thread a request),
    bound and ready to serve: serve_forever() serves, shutdown() (from another thread) stops it,
    server_close() closes its socket. `url` is its study's page."""

    daemon_threads = True
    url: str = ""


class _DashboardServer6(DashboardServer):
    address_family = socket.AF_INET6


def open_server(sweep: str, root: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                writable: bool = False) -> DashboardServer:
    """A dashboard on search `sweep`'s study, bound to `host`:`port` (not serving yet).

    Args:
        sweep: the sweep's name.
        root: the project folder.
        host: a loopback address or name.
        port: the port; 0 for a free one (server_port tells which).
        writable: let the browser write to the study (through the driver's lock); read-only by
            default.

    Returns:
        The bound server; its `url` is the study's page.

    Raises:
        InputError: an invalid sweep name, or a host that is not loopback.
        ResultsError: as open_journal (no such sweep, not a search).
        SweepError: optuna-dashboard is not installed.
        InputError: the port cannot be bound (in use, or privileged).
    """
    family, address = loopback(host)
    store = open_journal(sweep, root)
    app = dashboard_app(store, writable=writable)
    server_class = _DashboardServer6 if family == socket.AF_INET6 else DashboardServer
    try:
        server = server_class((address, port), _QuietHandler)
    except OSError as exc:
        raise InputError(f"cannot listen on {host} port {port}: {exc.strerror or exc} (choose another with --port)") \
            from None
    server.set_app(app)
    server.url = url(address, server.server_port, store.get_study_id_from_name(sweep))
    return server


def serve(sweep: str, root: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, writable: bool = False,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve optuna-dashboard on search `sweep`'s study until interrupted (Ctrl-C).

    Args:
        sweep: the sweep's name.
        root: the project folder.
        host: a loopback address or name.
        port: the port; 0 for a free one.
        writable: let the browser write to the study (through the driver's lock).
        ready: called with the study page's URL once the server listens (the CLI prints it).

    Raises:
        As open_server. A KeyboardInterrupt ends the serving and returns.
    """
    server = open_server(sweep, root, host, port, writable=writable)
    try:
        if ready is not None:
            ready(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
