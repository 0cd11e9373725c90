"""A vendor's postback endpoint for the tests: a real HTTP server on 127.0.0.1, in a thread.

It records every request and answers from a script: a status code, or `"hang"` to say nothing
for longer than any read timeout the tests set. Whatever the script does not cover answers 200.
"""

import re
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "vendor-guide.md"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    server: ThreadingHTTPServer
    scheme: str

    def __init__(self, answers: list):
        self.answers = list(answers)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.hung = threading.Event()

    def url(self, path: str = "/postbacks", host: str | None = None) -> str:
        port = self.server.server_address[1]
        return f"{self.scheme}://{host or '127.0.0.1'}:{port}{path}"

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.received)} postbacks arrived, not {count}")


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key, made with the openssl command."""
    cert, key = folder / "localhost.pem", folder / "localhost-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextmanager
def postback_receiver(*answers, tls: tuple[Path, Path] | None = None):
    """`tls`: (certificate, key) to answer HTTPS instead of HTTP."""
    receiver = Receiver(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                answer = receiver.answers.pop(0) if receiver.answers else 200
            if answer == "hang":
                receiver.hung.wait(5)
                return
            self.send_response(answer)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if answer < 300 else b"something broke")

        def log_message(self, *args):
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server.daemon_threads = True
    receiver.scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
        receiver.scheme = "https"
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.hung.set()
        receiver.server.shutdown()
        receiver.server.server_close()


def guide_code(language: str, name: str) -> str:
    """The vendor guide's code block in `language` that defines `name`."""
    for block in re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S):
        if name in block:
            return block
    raise AssertionError(f"the vendor guide shows no {language} code for {name}")


def guide_python_check():
    """The vendor guide's Python signature check, as a vendor would paste it."""
    namespace: dict = {}
    exec(guide_code("python", "def postback_is_genuine"), namespace)
    return namespace["postback_is_genuine"]
