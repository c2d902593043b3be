"""`sweep dashboard`: optuna-dashboard on a search's journal, opened as the driver opens it (the
same storage function, so the same O_EXCL lock file), bound to this machine's loopback only.

The study is a real journal written through the driver's own open_study (the study named after
the sweep); the dashboard is the real optuna-dashboard served on a free localhost port, asked
through its HTTP API."""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest

from sweep.core.errors import InputError, ResultsError, SweepError
from sweep.core.grid import parse_grid
from sweep.records.study import load_study
from sweep.search import dashboard
from sweep.search import study as studies

SWEEP = "dash"


def write_study(root: Path) -> optuna.Study:
    """A search's study as the driver leaves it: 2 trials told COMPLETE, 1 PRUNED, 1 RUNNING."""
    spec = parse_grid(f"sweep: {SWEEP}\nmodel: lstm\nseed: 5\ndata: {{path: data/x.npz}}\n"
                      "params: {topology: [32, 64, 1], epochs: 3}\n"
                      "axes:\n  learning_rate: {low: 1.0e-5, high: 3.0e-2, log: true}\n  optimizer: [adam, sgd]\n"
                      "search: {sampler: random, trials: 4}\n", SWEEP, root)
    study = studies.open_study(spec, root)  # the driver's own: results/dash/study.journal, study 'dash'
    dists = studies.distributions(spec)
    for value in (0.91, 0.87):
        trial = study.ask(fixed_distributions=dists)
        trial.report(value - 0.1, 1)
        study.tell(trial, value)
    pruned = study.ask(fixed_distributions=dists)
    pruned.report(0.2, 1)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    study.ask(fixed_distributions=dists)  # a trial still training
    return study


def http(method: str, url: str, body: dict | None = None, host: str | None = None,
         origin: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {}),
               **({"Origin": origin} if origin else {})}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Running:
    """A dashboard server serving in a background thread; stopped and closed on exit."""

    def __init__(self, server: dashboard.DashboardServer):
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> dashboard.DashboardServer:
        self.thread.start()
        return self.server

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(timeout=30)
        self.server.server_close()


def test_the_dashboard_serves_the_driver_s_study_read_only_on_localhost(tmp_path):
    written = write_study(tmp_path)
    journal = tmp_path / "results" / SWEEP / "study.journal"
    before = journal.read_bytes()
    server = dashboard.open_server(SWEEP, tmp_path, port=0)  # port 0: a free one
    assert server.server_address[0] == "127.0.0.1" and server.server_port > 0
    with Running(server):
        base = f"http://127.0.0.1:{server.server_port}"
        status, listing = http("GET", f"{base}/api/studies")
        assert status == 200
        (summary,) = listing["study_summaries"]
        assert summary["study_name"] == SWEEP and summary["directions"] == ["maximize"]
        study_id = summary["study_id"]
        assert server.url == f"{base}/dashboard/studies/{study_id}"

        status, detail = http("GET", f"{base}/api/studies/{study_id}")
        assert status == 200 and detail["name"] == SWEEP
        trials = sorted(detail["trials"], key=lambda t: t["number"])
        assert [t["state"] for t in trials] == ["Complete", "Complete", "Pruned", "Running"]
        assert [t["values"] for t in trials[:2]] == [[0.91], [0.87]]
        expected = written.get_trials(deepcopy=False)
        for got, want in zip(trials, expected, strict=True):
            params = {p["name"]: p["param_internal_value"] for p in got["params"]}
            assert params == {name: want.distributions[name].to_internal_repr(v) for name, v in want.params.items()}
        assert trials[2]["intermediate_values"] == [{"step": 1, "value": 0.2}]

        # the page the CLI prints is the dashboard's own
        with urllib.request.urlopen(server.url, timeout=30) as resp:
            assert resp.status == 200 and b"<html" in resp.read().lower()

        # read-only: the driver is the journal's only writer; renaming or deleting its study is refused
        status, answer = http("DELETE", f"{base}/api/studies/{study_id}")
        assert status == 403 and "read-only" in answer["reason"]
        status, _ = http("POST", f"{base}/api/studies/{study_id}/rename", {"study_name": "other"})
        assert status == 403
        # a page elsewhere whose name a browser was made to resolve to 127.0.0.1 (DNS rebinding)
        status, answer = http("GET", f"{base}/api/studies", host=f"evil.example:{server.server_port}")
        assert status == 403 and "localhost only" in answer["reason"]
        assert http("GET", f"{base}/api/studies", host=f"localhost:{server.server_port}")[0] == 200
    assert journal.read_bytes() == before
    assert load_study(journal, SWEEP).trials[0].values == [0.91]
    assert not Path(f"{journal}.lock").exists()


def test_the_dashboard_opens_the_journal_with_the_driver_s_lock(tmp_path):
    """Same lock object and lock file as the driver's storage (optuna-dashboard's own opening of a
    journal path takes a symlink lock instead); a write the dashboard is allowed to make goes
    through it and leaves no lock behind."""
    from optuna.storages.journal import JournalFileOpenLock

    write_study(tmp_path)
    journal = tmp_path / "results" / SWEEP / "study.journal"
    ours = dashboard.open_journal(SWEEP, tmp_path)._backend._lock
    drivers = studies.storage(journal)._backend._lock
    assert isinstance(ours, JournalFileOpenLock) and type(ours) is type(drivers)
    assert ours._lock_file == drivers._lock_file == f"{journal}.lock"

    with Running(dashboard.open_server(SWEEP, tmp_path, port=0, writable=True)) as server:
        base = f"http://127.0.0.1:{server.server_port}"
        study_id = http("GET", f"{base}/api/studies")[1]["study_summaries"][0]["study_id"]
        # a write a page of another site sends (its browser names the page): refused
        status, _ = http("PUT", f"{base}/api/studies/{study_id}/note", {"version": 1, "body": "csrf"},
                         origin="https://evil.example")
        assert status == 403
        status, _ = http("PUT", f"{base}/api/studies/{study_id}/note", {"version": 1, "body": "lr too high"},
                         origin=base)
        assert status == 204
    store = studies.storage(journal)
    attrs = store.get_study_system_attrs(store.get_study_id_from_name(SWEEP))
    assert any(v == "lr too high" for v in attrs.values())
    assert not Path(f"{journal}.lock").exists()


def test_a_sweep_that_is_not_a_search_or_unknown_is_a_clear_error(tmp_path):
    with pytest.raises(ResultsError, match="no sweep 'nosuch'"):
        dashboard.open_journal("nosuch", tmp_path)
    (tmp_path / "jobs" / "grid").mkdir(parents=True)  # a grid sweep: jobs and results, no journal
    (tmp_path / "results" / "grid").mkdir(parents=True)
    with pytest.raises(ResultsError, match="not a search") as err:
        dashboard.open_server("grid", tmp_path, port=0)
    assert "study.journal" in str(err.value)
    assert not (tmp_path / "results" / "grid" / "study.journal").exists()  # nothing created
    write_study(tmp_path)
    (tmp_path / "results" / "other").mkdir()
    (tmp_path / "results" / SWEEP / "study.journal").rename(tmp_path / "results" / "other" / "study.journal")
    with pytest.raises(ResultsError, match="holds no study 'other'"):
        dashboard.open_journal("other", tmp_path)
    with pytest.raises(InputError, match="sweep name"):
        dashboard.open_journal("../x", tmp_path)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", ""])
def test_a_host_that_is_not_this_machine_s_loopback_is_refused(tmp_path, host):
    write_study(tmp_path)
    with pytest.raises(InputError, match="loopback"):
        dashboard.open_server(SWEEP, tmp_path, host=host, port=0)


def test_a_name_that_resolves_elsewhere_too_or_nowhere_is_refused(tmp_path, monkeypatch):
    write_study(tmp_path)
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("198.51.100.7", 0))]
    monkeypatch.setattr(dashboard.socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(InputError, match="loopback"):
        dashboard.open_server(SWEEP, tmp_path, host="mixed.example", port=0)

    def unknown(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(dashboard.socket, "getaddrinfo", unknown)
    with pytest.raises(InputError, match="loopback"):
        dashboard.open_server(SWEEP, tmp_path, host="nowhere.example", port=0)


def test_localhost_binds_a_loopback_address(tmp_path):
    write_study(tmp_path)
    server = dashboard.open_server(SWEEP, tmp_path, host="localhost", port=0)
    try:
        assert ipaddress.ip_address(server.server_address[0]).is_loopback
        assert server.url.startswith("http://") and server.url.endswith("/dashboard/studies/0")
    finally:
        server.server_close()


def test_url_of_a_loopback_address():
    assert dashboard.url("127.0.0.1", 8080) == "http://127.0.0.1:8080/dashboard"
    assert dashboard.url("::1", 8081, study_id=3) == "http://[::1]:8081/dashboard/studies/3"


def test_without_optuna_dashboard_the_error_names_the_package(tmp_path, monkeypatch):
    write_study(tmp_path)
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails as if not installed
    with pytest.raises(SweepError, match="optuna-dashboard"):
        dashboard.open_server(SWEEP, tmp_path, port=0)
