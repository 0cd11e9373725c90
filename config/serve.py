"""`make serve`: the production topology on this machine, in the foreground.

nginx on 127.0.0.1:$PORT (config/nginx/callrouting.conf.template) reads every request whole and
passes it to gunicorn (config/gunicorn.py) on a unix socket; beside them a Celery worker and beat
(SERVE_CELERY=false leaves them to run elsewhere). Settings come from the environment, as in
production. Ctrl-C or SIGTERM stops them all, and so does any one of them stopping: nginx first
(it finishes the requests it holds), then the rest; what is left after STOP_SECONDS is killed.
"""

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SITE_TEMPLATE = REPO / "config" / "nginx" / "callrouting.conf.template"
STARTUP_SECONDS = 60
NGINX_STOP_SECONDS = 3
STOP_SECONDS = 10
NGINX_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def render_site(*, listen: str, gunicorn_socket: str, access_log: str) -> str:
    """The repository's nginx site, its placeholders filled in (what envsubst does)."""
    text = SITE_TEMPLATE.read_text()
    values = {"LISTEN": listen, "GUNICORN_SOCKET": gunicorn_socket, "ACCESS_LOG": access_log}
    for name, value in values.items():
        placeholder = "${" + name + "}"
        if placeholder not in text:
            raise ValueError(f"{SITE_TEMPLATE} has no {placeholder}")
        text = text.replace(placeholder, value)
    return text


def write_nginx_config(directory: Path, site: str) -> Path:
    """nginx.conf for an nginx of our own serving `site` (render_site's): every path it writes is
    in `directory`, so it runs without root and beside any system nginx. Returns its path."""
    site_path = directory / "callrouting.conf"
    site_path.write_text(site)
    temp_paths = "".join(f"    {name}_temp_path {directory / name};\n" for name in NGINX_TEMP_PATHS)
    main = directory / "nginx.conf"
    main.write_text(
        f"{_worker_user()}"
        "worker_processes auto;\n"
        f"pid {directory / 'nginx.pid'};\n"
        "error_log stderr warn;\n"
        "daemon off;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"{temp_paths}"
        f"    include {site_path};\n"
        "}\n"
    )
    return main


def _worker_user() -> str:
    # As root, nginx's workers drop to another user (nobody unless told); it must reach the
    # socket, which lives in a directory others may traverse.
    if os.geteuid() != 0:
        return ""
    for name in ("www-data", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return f"user {name};\n"
    return ""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise SystemExit("nginx is not installed: `make nginx` installs Debian's package.")
    return found


def nginx_command(config: Path) -> list[str]:
    return [nginx_binary(), "-p", str(config.parent), "-c", str(config), "-e", "stderr"]


def connectable(address: str | tuple[str, int]) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    # Linux: if this supervisor is killed outright, its children still get SIGTERM.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}
        self.stop_signal: int | None = None

    def request_stop(self, signum, frame) -> None:
        self.stop_signal = signum

    def start(self, name: str, command: list[str]) -> None:
        # Each in its own process group: Ctrl-C reaches this supervisor only, which stops them
        # in order, and a group is killed whole when it outstays STOP_SECONDS.
        self.processes[name] = subprocess.Popen(
            command, cwd=REPO, env=self.env, start_new_session=True, preexec_fn=_die_with_parent
        )

    def exited(self) -> str | None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name
        return None

    def wait_until(self, ready, what: str) -> bool:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not ready():
            if self.stop_signal is not None or self.exited():
                return False
            if time.monotonic() > deadline:
                log(f"{what} not ready after {STARTUP_SECONDS} s")
                return False
            time.sleep(0.1)
        return True

    def stop(self) -> None:
        nginx = self.processes.get("nginx")
        if nginx is not None and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)  # graceful: no new connections, finish the rest
            self._wait([nginx], NGINX_STOP_SECONDS)
        for process in self.processes.values():
            if process.poll() is None:
                # The main process only: a Celery worker's pool is stopped by the worker.
                process.terminate()
        self._wait(list(self.processes.values()), STOP_SECONDS)
        for name, process in self.processes.items():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 0)
                log(f"{name} still running after {STOP_SECONDS} s: killed")
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    @staticmethod
    def _wait(processes: list[subprocess.Popen], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(p.poll() is None for p in processes):
            time.sleep(0.1)


def log(message: str) -> None:
    print(f"serve: {message}", file=sys.stderr, flush=True)


def main() -> int:
    port = int(os.environ.get("PORT") or 8000)
    directory = Path(tempfile.mkdtemp(prefix="callrouting-serve-"))
    directory.chmod(0o711)
    gunicorn_socket = str(directory / "gunicorn.sock")
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env["GUNICORN_BIND"] = f"unix:{gunicorn_socket}"
    env["GUNICORN_BEHIND_NGINX"] = "true"
    site = render_site(
        listen=f"127.0.0.1:{port}", gunicorn_socket=gunicorn_socket, access_log="/dev/stdout"
    )
    nginx_config = write_nginx_config(directory, site)

    supervisor = Supervisor(env)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.request_stop)
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "config"]
    try:
        supervisor.start("gunicorn", [python, "-m", "gunicorn", "-c", "config/gunicorn.py"])
        ready = supervisor.wait_until(lambda: connectable(gunicorn_socket), "gunicorn")
        if ready:
            supervisor.start("nginx", nginx_command(nginx_config))
            # The pid file is written once the port is bound: a port taken by another server
            # answers too, but then nginx exits and everything stops.
            pid_file = directory / "nginx.pid"
            ready = supervisor.wait_until(
                lambda: pid_file.exists() and connectable(("127.0.0.1", port)), "nginx"
            )
        if ready and os.environ.get("SERVE_CELERY", "true").lower() not in ("0", "false", "no"):
            supervisor.start("worker", [*celery, "worker", "--loglevel", "INFO"])
            supervisor.start("beat", [*celery, "beat", "--loglevel", "WARNING"])
        if ready:
            log(f"serving on http://127.0.0.1:{port} ({', '.join(supervisor.processes)})")
        while ready and supervisor.stop_signal is None and supervisor.exited() is None:
            time.sleep(0.2)
        gone = supervisor.exited()
        if supervisor.stop_signal is None and gone:
            log(f"{gone} stopped (exit status {supervisor.processes[gone].returncode})")
        log("stopping " + ", ".join(supervisor.processes))
    finally:
        supervisor.stop()
        shutil.rmtree(directory, ignore_errors=True)
    log("stopped")
    return 0 if supervisor.stop_signal is not None else 1


if __name__ == "__main__":
    sys.exit(main())
