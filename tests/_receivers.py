"""Real receivers for notification tests: an SMTP server (aiosmtpd) and an HTTP
webhook receiver that checks the signature, both on a free loopback port."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """What the SMTP server received: one entry per message."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for rcpts, m in self.messages if address in rcpts]


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


class Hook:
    """An HTTP receiver: verifies ``X-Assay-Signature`` with ``secret``, answers
    ``fail_first`` requests with 500 (``always_fail``: every request)."""

    def __init__(self, secret: str, fail_first: int = 0, always_fail: bool = False) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.requests: list[dict[str, Any]] = []  # every request, verified or not
        self.accepted: list[dict[str, Any]] = []  # bodies answered with 200
        self.lock = threading.Lock()
        self.url = ""

    def verify(self, headers: Any, body: bytes) -> bool:
        stamp = headers.get("X-Assay-Timestamp", "")
        expected = "sha256=" + hmac.new(self.secret.encode(), stamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("X-Assay-Signature", ""))


@contextmanager
def webhook_receiver(secret: str, **kw: Any) -> Iterator[Hook]:
    hook = Hook(secret, **kw)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = hook.verify(self.headers, body)
            with hook.lock:
                hook.requests.append({"headers": dict(self.headers), "body": body,
                                      "verified": ok})
                failing = hook.always_fail or len(hook.requests) <= hook.fail_first
                if ok and not failing:
                    hook.accepted.append(json.loads(body))
            status = 401 if not ok else 500 if failing else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"no")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
