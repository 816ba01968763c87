"""A real OpenAI-compatible chat server on 127.0.0.1 for tests (ours and users'), with faults on
demand: each queued fault is consumed by one request. It counts requests and the most that were
in flight at once.

    with ChatServer(replies=["a photo of a {}."]) as server:
        server.faults.extend(["429", "500"])
        llm = OpenAICompatLLM("test-model", base_url=server.url, api_key_env="")
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("429", "500", "503", "slow", "cut", "invalid_json", "empty_choices", "empty_content")


class ChatServer:
    def __init__(self, replies: list[str] | Callable[[dict[str, Any]], str] | None = None, *,
                 models: tuple[str, ...] = ("test-model",), latency_s: float = 0.0, slow_s: float = 3.0,
                 retry_after: float = 0.01) -> None:
        self.replies = replies or ["a photo of a {}."]
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
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                      length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in (headers or {}).items():
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
                    fault = server.faults.popleft() if server.faults else None
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
                if fault == "429":
                    self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": str(server.retry_after)})
                    return
                if fault in ("500", "503"):
                    self._send(int(fault), b'{"error": {"message": "server error"}}')
                    return
                if fault == "slow":
                    time.sleep(server.slow_s)
                text = server._reply_text(body)
                choices = [{"index": i, "message": {"role": "assistant", "content": "" if fault == "empty_content"
                                                    else text}, "finish_reason": "stop"}
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
                else:
                    self._send(200, data)

        return Handler
