"""A real OpenAI-compatible chat server on 127.0.0.1 for tests (ours and users'), with faults on
demand: each queued fault is consumed by one request; ``always`` answers every request with one
fault (an endpoint that is down); ``mix`` draws a fault for each request at random from a seeded
generator (the chaos suite). It counts requests, faults by type and the most in flight at once.

    with ChatServer(replies=["a photo of a {}."]) as server:
        server.faults.extend(["429", "500"])
        llm = OpenAICompatLLM("test-model", base_url=server.url, api_key_env="")
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# "429" carries Retry-After, "429_bare" does not; "slow" stalls slow_s (past a short client
# timeout); "reset" drops the connection with a TCP RST; "cut" ends the body mid-JSON (short of
# its Content-Length), "cut_utf8" mid-character (a complete but undecodable body); "html" is a
# gateway's error page with status 200; "huge" appends a 1 MB line to the reply.
FAULTS = ("401", "429", "429_bare", "500", "502", "503", "slow", "reset", "cut", "cut_utf8", "invalid_json",
          "html", "null_content", "empty_choices", "empty_content", "huge")
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"


def hashed_replies(templates: list[str]) -> Callable[[dict[str, Any]], str]:
    """Replies that depend on the request only (its messages and seed), never on arrival order:
    a killed and resumed run is asked the same and answered the same as an uninterrupted one."""
    def reply(body: dict[str, Any]) -> str:
        blob = json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()
        return templates[int(hashlib.sha256(blob).hexdigest(), 16) % len(templates)]

    return reply


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-reply (the point of several tests) is not a server error


class ChatServer:
    def __init__(self, replies: list[str] | Callable[[dict[str, Any]], str] | None = None, *,
                 models: tuple[str, ...] = ("test-model",), latency_s: float = 0.0, slow_s: float = 3.0,
                 retry_after: float = 0.01, mix: dict[str, float] | None = None, seed: int = 0) -> None:
        self.replies = replies or ["a photo of a {}."]
        self.always: str | None = None
        self.mix = mix or {}  # fault -> probability per request; the rest are answered normally
        self._rng = random.Random(seed)
        self.fault_counts: Counter[str] = Counter()
        self.models = models
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.faults: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._count = 0
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _reply_text(self, body: dict[str, Any]) -> str:
        with self._lock:
            n = self._count
            self._count += 1
        if callable(self.replies):
            return self.replies(body)
        return self.replies[n % len(self.replies)]

    def _next_fault(self) -> str | None:
        if self.faults:
            return self.faults.popleft()
        if self.always:
            return self.always
        draw, edge = self._rng.random(), 0.0
        for fault, p in sorted(self.mix.items()):
            edge += p
            if draw < edge:
                return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                      length: int | None = None) -> None:
                self.send_response(status)
                headers = {"Content-Type": "application/json", **(headers or {})}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload) if length is None else length))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    data = [{"id": m, "object": "model", "owned_by": "test"} for m in server.models]
                    self._send(200, json.dumps({"object": "list", "data": data}).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    fault = server._next_fault()
                    server.fault_counts[fault or "ok"] += 1
                try:
                    self._answer(body, fault)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, body: dict[str, Any], fault: str | None) -> None:
                if server.latency_s:
                    time.sleep(server.latency_s)
                if body.get("model") not in server.models:
                    self._send(404, json.dumps({"error": {"message": f"model {body.get('model')} not found"}})
                               .encode())
                    return
                if fault in ("429", "429_bare"):
                    retry = {"Retry-After": str(server.retry_after)} if fault == "429" else {}
                    self._send(429, b'{"error": {"message": "rate limited"}}', retry)
                    return
                if fault == "401":
                    self._send(401, b'{"error": {"message": "invalid api key", "code": "invalid_api_key"}}')
                    return
                if fault in ("500", "502", "503"):
                    self._send(int(fault), b'{"error": {"message": "server error"}}')
                    return
                if fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if fault == "html":
                    self._send(200, HTML_PAGE, {"Content-Type": "text/html"})
                    return
                if fault == "slow":
                    time.sleep(server.slow_s)
                text = server._reply_text(body)
                content = {"empty_content": "", "null_content": None}.get(fault or "", text)
                if fault == "huge":
                    content = text + "\n" + "z" * 1_000_000
                choices = [{"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                           for i in range(int(body.get("n", 1) or 1))]
                payload = {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                           "model": body.get("model"), "choices": [] if fault == "empty_choices" else choices,
                           "usage": {"prompt_tokens": sum(len(str(m.get("content", "")).split())
                                                          for m in body.get("messages", [])),
                                     "completion_tokens": len(text.split()),
                                     "total_tokens": 0}}
                data = json.dumps(payload).encode()
                if fault == "invalid_json":
                    self._send(200, b'{"id": "x", "choices": [ this is not json')
                elif fault == "cut":
                    self._send(200, data[: len(data) // 2], length=len(data))
                    self.close_connection = True
                elif fault == "cut_utf8":
                    body_text = json.dumps(payload, ensure_ascii=False).replace('"chat.completion"', '"chat.é"')
                    raw = body_text.encode()
                    self._send(200, raw[: raw.index("é".encode()) + 1])  # ends inside the two bytes of é
                else:
                    self._send(200, data)

        return Handler
