"""A webhook receiver on a loopback port that refuses each event a given number of times first."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    """What the receiving application saw. `refuse(event_id, attempt)` says whether to answer 500."""

    refuse: Callable[[str, int], bool] = lambda _id, _attempt: False
    url: str = ""
    accepted: list[str] = field(default_factory=list)  # event ids, in arrival order
    attempts: Counter[str] = field(default_factory=Counter)
    log: list[tuple[float, str, bool]] = field(default_factory=list)  # (monotonic, event id, accepted)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return list(self.accepted)

    def refused(self, event_id: str) -> int:
        with self.lock:
            return sum(1 for _, e, ok in self.log if e == event_id and not ok)


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            event_id = str(json.loads(body)["event_id"])
            with receiver.lock:
                receiver.attempts[event_id] += 1
                refuse = receiver.refuse(event_id, receiver.attempts[event_id])
                receiver.log.append((time.monotonic(), event_id, not refuse))
                if not refuse:
                    receiver.accepted.append(event_id)
            self.send_response(500 if refuse else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:  # keep the test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
