"""A grid's notify: block: validated with file, line and key; HTCondor's `notification` and
`notify_user` on the DAGMan job and nothing of the webhook in any file sweep writes; the webhook
posted, for real, to an HTTP server on 127.0.0.1 by the FINAL node's POST script, by the end of a
search and by a failed post that is logged, not raised."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

from sweep.core.errors import GridError
from sweep.core.expand import expand
from sweep.core.grid import load_grid
from sweep.core.gridspec import NotifySpec
from tests.synthetic import make_sweep

BASE = "sweep: t\nmodel: lstm\ndata: {path: data/x.npz}\naxes: {optimizer: [adam, sgd]}\n"
SECRET = "T0KEN-of-the-hook"


def issues(write_grid, tmp_path, notify: str) -> list[str]:
    with pytest.raises(GridError) as info:
        load_grid(write_grid(BASE + "notify: " + notify + "\n"), tmp_path)
    return [str(i) for i in info.value.issues]


EMAIL_HELP = ("expected an e-mail address such as name@example.org (letters, digits and _ . % + - before the @, a "
              "host name after it; no spaces, quotes, commas or line breaks: it goes into the DAG job's "
              "notify_user), got ")


@pytest.mark.parametrize("notify, where, message", [
    ("{email: 'a b@example.org'}", "5:17: notify.email", EMAIL_HELP + "'a b@example.org'"),
    ("{email: [a@example.org, 'x\"y@example.org']}", "5:33: notify.email[1]", EMAIL_HELP + "'x\"y@example.org'"),
    ('{email: "me@example.org\\nqueue 100"}', "5:17: notify.email", EMAIL_HELP + "'me@example.org\\nqueue 100'"),
    ("{email: nobody}", "5:17: notify.email", EMAIL_HELP + "'nobody'"),
    ("{email: a@example.org, on: [complete, done]}", "5:36: notify.on",
     "expected a list of at least 1 values, each one of complete, error, held, got ['complete', 'done']"),
    ("{email: a@example.org, on: [completed]}", "5:36: notify.on",
     ("expected a list of at least 1 values, each one of complete, error, held, got ['completed']; "
      "did you mean 'complete'?")),
    ("{webhook: 'https://me:pw@hooks.example.org/x'}", "5:19: notify.webhook",
     ("a webhook URL may not hold credentials (user:password@): they would be copied wherever the URL goes; use a "
      "URL whose path carries the service's token, and keep the grid private, got "
      "'https://me:pw@hooks.example.org/x'")),
    ("{webhook: 'ftp://hooks.example.org/x'}", "5:19: notify.webhook",
     "expected an https:// or http:// URL (the webhook is an HTTP POST), got 'ftp://hooks.example.org/x'"),
    ("{webhook: 'file:///etc/passwd'}", "5:19: notify.webhook",
     "expected an https:// or http:// URL (the webhook is an HTTP POST), got 'file:///etc/passwd'"),
    ("{webhook: 'https:///x'}", "5:19: notify.webhook",
     "expected an https:// or http:// URL with a host name, got 'https:///x'"),
    ("{webhook: 'https://h.example.org/a b'}", "5:19: notify.webhook",
     ("expected a URL without spaces, line breaks or non-ASCII characters (percent-encode them), got "
      "'https://h.example.org/a b'")),
    ("{webhook: 'https://h.example.org/" + "x" * 2100 + "'}", "5:19: notify.webhook",
     "expected a URL of at most 2,048 characters (2,122 given), got 'https://h.example.org/" + "x" * 34 + "..."),
    ("{webhook: 'https://h.example.org/x', on: [held]}", "5:50: notify.on",
     ("held is told by HTCondor's mail about the DAGMan job, and notify.email names nobody: add an address, or "
      "drop held (the webhook is posted when the sweep ends)")),
    ("{}", "5:9: notify", "expected email, webhook or both (an empty notify: block tells nobody)"),
    ("{mail: a@example.org}", "5:10: notify.mail",
     "unknown key 'mail'; did you mean 'email'? (allowed: email, on, webhook)"),
])
def test_each_mistake_is_named_with_line_key_and_why(write_grid, tmp_path, notify, where, message):
    assert issues(write_grid, tmp_path, notify) == [f"{tmp_path / 'grid.yaml'}:{where}: {message}"]


@pytest.mark.parametrize("on, notification", [
    ("[complete]", "Complete"), ("[error]", "Error"), ("[complete, error]", "Always"), ("[held]", "Always"),
    ("[error, held]", "Always"), ("complete", "Complete")])
def test_on_maps_to_the_least_notification_that_mails_every_event(write_grid, tmp_path, on, notification):
    spec = load_grid(write_grid(BASE + f"notify: {{email: a@example.org, on: {on}}}\n"), tmp_path)
    assert spec.notify.notification == notification
    assert NotifySpec(email=(), on=("complete",)).notification == "Never"  # no address: nobody is mailed


def test_off_by_default_and_a_full_block(write_grid, tmp_path):
    assert load_grid(write_grid(BASE), tmp_path).notify is None
    spec = load_grid(write_grid(BASE + "notify:\n  email: [a@example.org, b.c+sweeps@cern.ch, a@example.org]\n"
                                "  on: [error, complete]\n  webhook: https://hooks.example.org/services/T1\n"),
                     tmp_path)
    assert spec.notify == NotifySpec(email=("a@example.org", "b.c+sweeps@cern.ch"), on=("complete", "error"),
                                     webhook="https://hooks.example.org/services/T1")
    assert spec.notify.notify_user == "a@example.org,b.c+sweeps@cern.ch"
    assert spec.notify.posts(failed=False) and spec.notify.posts(failed=True)
    only_errors = NotifySpec(on=("error",), webhook="https://h.example.org/x")
    assert only_errors.posts(failed=True) and not only_errors.posts(failed=False)


# ------------------------------------------------------------------ the DAG job: mail, and no webhook in a file
class _Result:
    def cluster(self):
        return 42


class FakeSchedd:
    def __init__(self):
        self.submitted = []

    def submit(self, sub):
        self.submitted.append(dict(sub))
        return _Result()


def test_the_dag_job_carries_notification_and_notify_user_and_no_file_the_webhook(write_grid, tmp_path, monkeypatch):
    pytest.importorskip("htcondor2")
    from sweep.core.render import render_sweep
    from sweep.submit.backends import htcondor

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.npz").write_bytes(b"x")
    url = f"https://hooks.example.org/services/{SECRET}?token={SECRET}"
    spec = load_grid(write_grid(BASE + f"notify: {{email: me@example.org, on: [complete, error], webhook: '{url}'}}\n"),
                     tmp_path)
    rendered = render_sweep(spec, expand(spec), tmp_path)
    dag_dir = rendered.jobs_dir / "dags" / "s1"
    dag_dir.mkdir(parents=True)
    rendered.submit_path.write_text(rendered.submit_text)  # what write_rendered writes (and the config)
    rendered.config_path.parent.mkdir(parents=True)
    rendered.config_path.write_text(rendered.config_text)
    monkeypatch.setattr(htcondor, "dagman_path", lambda: "/bin/true")
    monkeypatch.setattr(htcondor, "check_lock", lambda jobs_dir: None)
    schedd = FakeSchedd()
    htcondor.HTCondorBackend(schedd=schedd)._submit_dag(schedd, rendered, rendered.runs, "s1")
    (job,) = schedd.submitted
    assert job["notification"] == "Always" and job["notify_user"] == "me@example.org"
    dag = (dag_dir / "sweep.dag").read_text()
    assert f"SCRIPT POST collect /bin/sh {dag_dir / 'notify.sh'} $RETURN $DAG_STATUS $FAILED_COUNT" in dag
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "grid.yaml"]
    assert any(p.name == "notify.sh" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert not any(SECRET in str(v) for v in job.values())


def test_without_notify_the_dag_job_is_as_before(write_grid, tmp_path, monkeypatch):
    pytest.importorskip("htcondor2")
    from sweep.core.render import render_sweep
    from sweep.submit.backends import htcondor

    spec = load_grid(write_grid(BASE), tmp_path)
    rendered = render_sweep(spec, expand(spec), tmp_path)
    (rendered.jobs_dir / "dags" / "s1").mkdir(parents=True)
    monkeypatch.setattr(htcondor, "dagman_path", lambda: "/bin/true")
    monkeypatch.setattr(htcondor, "check_lock", lambda jobs_dir: None)
    schedd = FakeSchedd()
    htcondor.HTCondorBackend(schedd=schedd)._submit_dag(schedd, rendered, rendered.runs, "s1")
    assert "notify_user" not in schedd.submitted[0]
    assert "SCRIPT POST collect" not in (rendered.jobs_dir / "dags" / "s1" / "sweep.dag").read_text()


def test_a_driver_job_is_mailed_too(write_grid, tmp_path):
    from sweep.search.stage import local_universe_submit_text

    notify = NotifySpec(email=("me@example.org",), on=("error",), webhook=f"https://h.example.org/{SECRET}")
    text = local_universe_submit_text(tmp_path, "s", "driver", "search x --driver", tmp_path, "driver", {},
                                      heading="h", resume="r", notify=notify)
    assert "notification = Error\nnotify_user = me@example.org\nqueue" in text and SECRET not in text


# ------------------------------------------------------------------ the webhook, received for real
class Receiver:
    """An HTTP server on 127.0.0.1 in a thread that records each POST (and answers `status`)."""

    def __init__(self, status: int = 204):
        self.posts: list[tuple[str, dict, dict]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.posts.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook/{SECRET}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def finished_sweep(root: Path, url: str, on: str = "[complete, error]") -> None:
    make_sweep(root, "syn", corrupt=1, missing=1)
    grid = root / "grids" / "syn.yaml"  # what the manifest records (tests/synthetic.py)
    grid.parent.mkdir(parents=True, exist_ok=True)
    grid.write_text("sweep: syn\nmodel: lstm\ndata: {path: data/gone.npz}\n"
                    f"notify: {{on: {on}, webhook: '{url}'}}\n")


def test_the_final_nodes_post_script_posts_the_summary(tmp_path, capsys):
    from sweep.collect.notify import main

    with Receiver() as hook:
        finished_sweep(tmp_path, hook.url)
        log = tmp_path / "notify.log"
        # as the DAG's SCRIPT POST line runs it: $RETURN $DAG_STATUS $FAILED_COUNT
        code = main(["--root", str(tmp_path), "--sweep", "syn", "--log", str(log), "1", "1", "2"])
    assert code == 1  # the FINAL node fails as collect did: the DAG's result is unchanged
    ((path, headers, body),) = hook.posts
    assert path == f"/hook/{SECRET}" and headers["Content-Type"] == "application/json"
    assert body["sweep"] == "syn" and body["kind"] == "sweep" and body["status"] == "error"
    assert body["dag_status"] == 1 and body["failed_nodes"] == 2 and body["collect_exit"] == 1
    assert body["counts"]["ok"] == body["runs"] - 2 and sum(body["counts"].values()) == body["runs"]
    best = body["best"]
    assert best["metric"] == "f1" and best["direction"] == "max" and isinstance(best["value"], float)
    assert best["run_id"] and best["name"]
    assert body["report_command"].endswith("report syn") and body["schema"] == "sweep.notify/1"
    text = log.read_text()
    assert "posted to the webhook at http://127.0.0.1 (HTTP 204)" in text and SECRET not in text
    assert SECRET not in capsys.readouterr().out


def test_on_error_only_posts_nothing_for_a_clean_end(tmp_path):
    from sweep.collect.notify import main

    with Receiver() as hook:
        finished_sweep(tmp_path, hook.url, on="[error]")
        assert main(["--root", str(tmp_path), "--sweep", "syn", "0", "0", "0"]) == 0
    assert hook.posts == []


def test_a_webhook_that_fails_is_logged_not_raised(tmp_path):
    from sweep.collect.notify import main, post

    lines = []
    with Receiver(status=500) as hook:
        assert post(hook.url, {"sweep": "x"}, lines.append) is False
        finished_sweep(tmp_path, hook.url)
    assert lines == ["notify: the webhook at http://127.0.0.1 answered HTTP 500"]
    # the server is gone now: refused, logged, and the FINAL node still exits as collect did
    assert main(["--root", str(tmp_path), "--sweep", "syn", "0", "0", "0"]) == 0
    assert post(hook.url, {"sweep": "x"}, lines.append, timeout=2) is False
    assert lines[-1].startswith("notify: the webhook at http://127.0.0.1 could not be reached (URLError): ")


def test_a_webhook_that_answers_garbage_or_redirects_is_logged_not_raised_nor_followed():
    import socket

    from sweep.collect.notify import post

    lines: list[str] = []
    with socket.socket() as server:  # answers a line that is not HTTP (http.client raises BadStatusLine)
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def answer():
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"GARBAGE\r\n\r\n")

        worker = threading.Thread(target=answer)
        worker.start()
        assert post(f"http://127.0.0.1:{server.getsockname()[1]}/hook/{SECRET}", {"sweep": "x"}, lines.append,
                    timeout=5) is False
        worker.join(5)
    assert lines[-1].startswith("notify: the webhook at http://127.0.0.1 could not be reached (BadStatusLine)")
    assert SECRET not in lines[-1]
    with Receiver(status=302) as hook:  # a redirect: urllib would repeat the POST as a GET elsewhere
        assert post(hook.url, {"sweep": "x"}, lines.append) is False
    assert lines[-1] == "notify: the webhook at http://127.0.0.1 answered HTTP 302" and len(hook.posts) == 1


def test_the_end_of_a_search_is_posted(tmp_path):
    from sweep.collect.notify import tell_end

    with Receiver() as hook:
        make_sweep(tmp_path, "syn", corrupt=0, missing=0)
        notify = NotifySpec(on=("complete",), webhook=hook.url)
        assert tell_end(notify, "syn", tmp_path, kind="search", failed=False,
                        extra={"trials": {"complete": 4}}) is True
        assert tell_end(NotifySpec(on=("error",), webhook=hook.url), "syn", tmp_path, kind="search",
                        failed=False) is None
    ((_, _, body),) = hook.posts
    assert body["kind"] == "search" and body["status"] == "complete" and body["trials"] == {"complete": 4}


def test_the_end_of_a_chain_is_posted_once_per_webhook_and_never_raises(tmp_path):
    """A chain posts to the webhooks of its two grids (one post when both name the same), with its
    stages and how it ended; a post that goes wrong is logged, and the chain's end stands."""
    from types import SimpleNamespace

    from sweep.chain.run import _tell_chain
    from sweep.records.chain import ChainRecord

    notes: list[str] = []
    with Receiver() as hook:
        grid = tmp_path / "peaks.yaml"
        grid.write_text(f"notify: {{webhook: '{hook.url}', on: [complete, error]}}\n")
        spec = SimpleNamespace(name="ch", peaks=SimpleNamespace(grid=grid), clusters=SimpleNamespace(grid=grid))
        _tell_chain(spec, tmp_path, ChainRecord(chain="ch"), None, notes.append)
        _tell_chain(spec, tmp_path, ChainRecord(chain="ch"), "the peaks stage failed", notes.append)
    (_, _, done), (_, _, failed) = hook.posts
    assert done["kind"] == "chain" and done["sweep"] == "ch" and done["status"] == "complete"
    assert done["schema"] == "sweep.notify/1" and "sweep_version" in done and "stages" in done
    assert failed["status"] == "error" and failed["problem"] == "the peaks stage failed"
    # the receiver is gone: refused and logged, nothing raised
    _tell_chain(spec, tmp_path, ChainRecord(chain="ch"), None, notes.append)
    assert notes[-1].startswith("notify: the webhook at http://127.0.0.1 could not be reached")
