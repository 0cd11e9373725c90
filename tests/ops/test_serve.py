"""`make serve`: nginx in front of gunicorn, as production runs them, on this machine.

The stack runs as a person runs it (`make serve`, on a SQLite file of its own) and is talked to
over sockets only; nginx alone, with gunicorn gone or silent, runs from the same configuration.
Bounded: trickling clients stop by themselves, and every server is stopped and checked gone.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from config.proxy import PROXY_REQUEST_ID, behind_nginx
from config.serve import nginx_command, render_site, write_nginx_config
from tests.conftest import AZ_PING, PING_URL
from tests.servers import demo_database_prepare, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
NGINX = Path("/usr/sbin/nginx")
STARTUP_SECONDS = 120
# The test run's own settings, which must not leak into the stack.
NOT_INHERITED = (
    "DATABASE_URL",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
)
TRICKLING_CLIENTS = 12
TRICKLE_SECONDS = 2
PING_DEADLINE_SECONDS = 3
UNEXPECTED = "An unexpected condition was encountered by the server."


@pytest.fixture(scope="module", autouse=True)
def nginx_installed():
    if not NGINX.exists():
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(f"{NGINX} is missing: `make nginx` installs it")
        pytest.skip(f"{NGINX} is missing: `make nginx` installs it")


def stack_env(directory: Path, **settings: str) -> dict:
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(
        SECRET_KEY="serve-test-only",
        DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
        CELERY_BROKER_FOLDER=str(directory / "celery-broker"),
        # 2 workers x 4 threads (config/gunicorn.py's threads): fewer than the trickling clients.
        WEB_CONCURRENCY="2",
        LOG_LEVEL="INFO",
    )
    env.update(settings)
    return env


def descendants(pid: int) -> set[int]:
    """Every living process under `pid` (own sessions included)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                living.add(pid)
    return living


class Stack:
    """`make serve` on a free port, in its own process group as a terminal's job."""

    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", "serve"],
                cwd=REPO,
                env={**env, "PORT": str(self.port)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        self.started: set[int] = set()

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "serve: serving on" not in self.log:
            if self.process.poll() is not None:
                pytest.fail("make serve stopped on its own:\n" + self.log)
            if time.monotonic() > deadline:
                pytest.fail("make serve did not serve in time:\n" + self.log)
            time.sleep(0.2)
        self.started = descendants(self.process.pid)

    def stopped_within(self, seconds: float) -> bool:
        """True once make and every process it started are gone, within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not alive(self.started):
                return True
            time.sleep(0.1)
        return False

    def kill(self) -> None:
        for pid in alive(self.started | {self.process.pid}):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)


@contextlib.contextmanager
def make_serve(env: dict, log_path: Path):
    stack = Stack(env, log_path)
    try:
        stack.wait_until_serving()
        yield stack
    finally:
        if stack.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(stack.process.pid, signal.SIGINT)  # Ctrl-C
        stopped = stack.stopped_within(30)
        if not stopped:
            stack.kill()
    assert stopped, "make serve left processes behind:\n" + stack.log


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One stack for the tests that only talk to it: nginx and gunicorn, no Celery."""
    directory = tmp_path_factory.mktemp("serve")
    env = stack_env(directory, SERVE_CELERY="false")
    demo_database_prepare(env)
    with make_serve(env, directory / "make-serve.log") as stack:
        yield stack


def raw_request(port: int, data: bytes, *, timeout: float = 10) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request written byte for byte; the connection closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return int(lines[0].split()[1]), headers, body


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        out, body = out + rest[:length], rest[length + 2 :]
    return out


def ping_request(body: bytes, *extra_headers: str, target: str = PING_URL) -> bytes:
    head = [
        f"POST {target} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *extra_headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def timed_ping(port: int, timeout: float) -> tuple[int, dict, float]:
    started = time.monotonic()
    status, _, body = raw_request(port, ping_request(json.dumps(AZ_PING).encode()), timeout=timeout)
    return status, json.loads(body), time.monotonic() - started


@contextlib.contextmanager
def trickling_clients(port: int):
    """TRICKLING_CLIENTS pings whose body comes a byte every TRICKLE_SECONDS; they stop when the
    block ends (or after a minute, whatever happens to the test)."""
    body = json.dumps(AZ_PING).encode()
    clients = []
    for _ in range(TRICKLING_CLIENTS):
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(ping_request(body)[: -len(body) + 1])  # the headers and one byte
        clients.append(conn)
    done = threading.Event()

    def trickle():
        sent = 1
        while not done.wait(TRICKLE_SECONDS) and sent < len(body) - 1 and sent < 30:
            for conn in clients:
                with contextlib.suppress(OSError):
                    conn.sendall(body[sent : sent + 1])
            sent += 1

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    time.sleep(1)  # every client accepted and its request under way
    try:
        yield
    finally:
        done.set()
        thread.join(10)
        for conn in clients:
            conn.close()


def assert_envelope(status: int, headers: dict, body: bytes, expected_status: int, message: str):
    assert status == expected_status, body
    assert headers["content-type"].startswith("application/json"), body
    answer = json.loads(body)
    assert answer["status"] == expected_status
    assert answer["data"]["message"] == message
    request_id = answer["data"]["requestId"]
    assert str(uuid.UUID(request_id)) == request_id
    assert headers["x-request-id"] == request_id


# --- Slow clients ---------------------------------------------------------------------------


def test_a_ping_answers_within_3_seconds_while_a_dozen_clients_trickle_their_bodies(served):
    assert timed_ping(served.port, 30)[0] == 200  # the workers are up
    with trickling_clients(served.port):
        for _ in range(3):
            status, answer, seconds = timed_ping(served.port, PING_DEADLINE_SECONDS)
            assert status == 200, answer
            assert seconds < PING_DEADLINE_SECONDS


def test_without_nginx_the_same_trickling_clients_hold_every_ping(tmp_path):
    """The control: gunicorn alone, as config/gunicorn.py runs it, is stalled by them."""
    # One worker: with two, the clients may all land on one of them and leave the other free.
    env = stack_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="config.settings",
        ALLOWED_HOSTS="127.0.0.1",
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="4",
    )
    demo_database_prepare(env)
    port = free_port()
    env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py"],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        assert timed_ping(port, 30)[0] == 200  # the workers are up
        with trickling_clients(port), pytest.raises(TimeoutError):
            timed_ping(port, PING_DEADLINE_SECONDS)
    finally:
        os.killpg(gunicorn.pid, signal.SIGKILL)
        gunicorn.wait(10)


# --- The answers nginx makes itself ---------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        pytest.param(
            ping_request(b"{" + b" " * 16 * 1024 + b"}"),
            413,
            "Request body too large.",
            id="413-body-over-16-KiB",
        ),
        pytest.param(
            b"POST " + PING_URL.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + (b"1000\r\n" + b" " * 4096 + b"\r\n") * 5,
            413,
            "Request body too large.",
            id="413-chunked-body-over-16-KiB",
        ),
        pytest.param(
            ping_request(b"{}", "X-Padding: " + "a" * 9000),
            431,
            "Request headers too large.",
            id="431-header-over-8-KiB",
        ),
        pytest.param(
            b"POST " + PING_URL.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: twelve\r\n\r\n{}",
            400,
            "Malformed request.",
            id="400-bad-content-length",
        ),
        pytest.param(
            b"POST /functions/v1/vendors ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            400,
            "Malformed request.",
            id="400-bad-request-line",
        ),
        pytest.param(
            ping_request(b"{}", target=PING_URL + "?" + "a" * 9000),
            414,
            "Request line too long.",
            id="414-request-line-over-8-KiB",
        ),
        pytest.param(
            ping_request(b"{}", target="/api/v1/call-records").replace(
                b"Content-Length: 2", b"Content-Length: -1"
            ),
            400,
            "Malformed request.",
            id="400-on-the-api",
        ),
    ],
)
def test_nginx_refuses_in_the_envelope(served, request_bytes, status, message):
    assert_envelope(*raw_request(served.port, request_bytes), status, message)


@pytest.mark.parametrize(
    "request_bytes",
    [
        # gunicorn alone refuses each of these itself, in HTML.
        pytest.param(
            ping_request(b"{}", *(f"X-Header-{n}: 1" for n in range(150))), id="150-headers"
        ),
        pytest.param(ping_request(b"{}", "X-Long: " + "a" * 8181), id="a-header-line-near-8-KiB"),
        pytest.param(ping_request(b"{}", target=PING_URL + "?" + "a" * 5000), id="long-query"),
        pytest.param(
            ping_request(b"{}", "X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"),
            id="scheme-headers-that-disagree",
        ),
        pytest.param(ping_request(b"{}").replace(b"POST", b"PO", 1), id="a-two-letter-method"),
    ],
)
def test_what_gunicorn_alone_would_refuse_in_html_reaches_the_app(served, request_bytes):
    status, headers, body = raw_request(served.port, request_bytes)
    assert status in (401, 405), body  # the app's answers: no key, or not a POST
    answer = json.loads(body)
    assert answer["status"] == status
    assert headers["x-request-id"] == answer["data"]["requestId"]


def test_nginx_pages_stay_html_off_the_vendor_paths(served):
    status, headers, _ = raw_request(
        served.port, ping_request(b"{}", "X-Padding: " + "a" * 9000, target="/admin/")
    )
    assert status == 400
    assert headers["content-type"].startswith("text/html")


def test_the_app_logs_a_request_under_the_id_nginx_answered_and_logged(served):
    status, headers, body = raw_request(
        served.port, ping_request(json.dumps({"vendorKey": "not-a-key"}).encode())
    )
    assert status == 401
    request_id = json.loads(body)["data"]["requestId"]
    assert headers["x-request-id"] == request_id
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in served.log.splitlines() if request_id in line]
        loggers = {line["logger"] for line in lines}
        if {"nginx.access", "config.errors"} <= loggers or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {"nginx.access", "config.errors"} <= loggers, served.log[-3000:]


def test_the_client_address_is_nginx_s_peer(served):
    """/metrics answers loopback only: through nginx and its unix socket, the address the app
    sees is still the client's (with none, it would answer 403)."""
    request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    status, _, body = raw_request(served.port, request + b"\r\n")
    assert status == 200, body
    assert b"callrouting_pings_total" in body
    # A made-up address is replaced by nginx with the peer's.
    status, _, _ = raw_request(served.port, request + b"X-Real-IP: 203.0.113.9\r\n\r\n")
    assert status == 200


@pytest.mark.parametrize("family", [socket.AF_UNIX, socket.AF_INET])
def test_only_a_peer_on_the_unix_socket_is_believed(family):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return []

    request_id = str(uuid.uuid4())
    with socket.socket(family) as peer:
        behind_nginx(app)(
            {
                "gunicorn.socket": peer,
                "REMOTE_ADDR": "",
                "HTTP_X_REAL_IP": "203.0.113.9",
                "HTTP_X_REQUEST_ID": request_id,
            },
            None,
        )
    if family == socket.AF_UNIX:
        assert seen["REMOTE_ADDR"] == "203.0.113.9"
        assert seen[PROXY_REQUEST_ID] == request_id
    else:
        assert seen["REMOTE_ADDR"] == ""
        assert PROXY_REQUEST_ID not in seen


# --- nginx with gunicorn gone or silent -----------------------------------------------------


@contextlib.contextmanager
def nginx_alone(site_edits: dict[str, str] | None = None):
    """The repository's nginx in front of a socket that `yield`s to the caller."""
    directory = Path(tempfile.mkdtemp(prefix="nginx-alone-"))
    directory.chmod(0o711)
    upstream = directory / "gunicorn.sock"
    port = free_port()
    site = render_site(
        listen=f"127.0.0.1:{port}",
        gunicorn_socket=str(upstream),
        access_log=str(directory / "access.log"),
    )
    for old, new in (site_edits or {}).items():
        assert old in site
        site = site.replace(old, new)
    nginx = subprocess.Popen(
        nginx_command(write_nginx_config(directory, site)),
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        yield port, upstream
    finally:
        nginx.terminate()
        nginx.wait(10)
        subprocess.run(["rm", "-rf", str(directory)], check=False)


def test_with_gunicorn_gone_a_ping_is_answered_502_in_the_envelope():
    with nginx_alone() as (port, _):
        status, headers, body = raw_request(port, ping_request(json.dumps(AZ_PING).encode()))
    assert_envelope(status, headers, body, 502, UNEXPECTED)


def test_with_gunicorn_silent_a_ping_is_answered_504_in_the_envelope():
    # The ping's read timeout (10 s) cut to 1 s, so the test does not wait 10 s.
    edits = {"proxy_read_timeout 10s;": "proxy_read_timeout 1s;"}
    with nginx_alone(edits) as (port, upstream), socket.socket(socket.AF_UNIX) as silent:
        silent.bind(str(upstream))
        upstream.chmod(0o777)
        silent.listen(8)
        started = time.monotonic()
        status, headers, body = raw_request(port, ping_request(json.dumps(AZ_PING).encode()))
    assert_envelope(status, headers, body, 504, UNEXPECTED)
    assert time.monotonic() - started < 3


# --- Stopping -------------------------------------------------------------------------------


def test_sigterm_to_make_serve_stops_nginx_gunicorn_worker_and_beat(tmp_path):
    env = stack_env(tmp_path)
    demo_database_prepare(env)
    stack = Stack(env, tmp_path / "make-serve.log")
    try:
        stack.wait_until_serving()
        names = {cmdline(pid) for pid in alive(stack.started)}
        for expected in (b"nginx", b"gunicorn", b"worker", b"beat"):
            assert any(expected in name for name in names), names
        stack.process.terminate()  # SIGTERM to make alone, as a service manager sends it
        assert stack.stopped_within(15), "left running:\n" + stack.log
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", stack.port), timeout=1).close()
    finally:
        stack.kill()


def test_gunicorn_dying_stops_the_rest(tmp_path):
    env = stack_env(tmp_path, SERVE_CELERY="false")
    demo_database_prepare(env)
    stack = Stack(env, tmp_path / "make-serve.log")
    try:
        stack.wait_until_serving()
        supervisor = next(pid for pid in alive(stack.started) if b"config.serve" in cmdline(pid))
        master = next(
            pid
            for pid in descendants(supervisor)
            if b"gunicorn" in cmdline(pid) and parent(pid) == supervisor
        )
        os.kill(master, signal.SIGKILL)
        assert stack.stopped_within(15), "left running:\n" + stack.log
        assert stack.process.returncode != 0
        assert "serve: gunicorn stopped" in stack.log
    finally:
        stack.kill()
