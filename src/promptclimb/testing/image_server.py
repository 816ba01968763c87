"""A real OpenAI-compatible images + vision-chat server on 127.0.0.1 for tests (ours and users'),
with faults on demand, built on the chat test server.

POST /v1/images/generations draws each prompt's colour and shape words (t2i/fake.py) and answers
base64 PNGs; a prompt holding a blocked word gets OpenAI's content-policy 400. POST
/v1/chat/completions answers requests that carry images (image_url parts) with the toy judge's
JSON (or ``judge`` replies), and text-only requests with ``replies`` (the prompt-writing LLM).
Faults: ``image_faults`` and ``faults`` (chat) queues, each fault consumed by one request: "429"
(with Retry-After), "500", "503", "policy", "slow", "cut", "invalid_json"; ``image_always`` and
``always`` (chat) answer every request with one fault.

    with ImageServer(replies=["a blue circle"]) as server:
        server.image_faults.append("429")
        ...  # generator and judge base_url = server.url
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from PIL import Image

from promptclimb.t2i.fake import BLOCKED, draw_prompt, toy_judge_reply
from promptclimb.testing.chat_server import ChatServer

POLICY = {"error": {"code": "content_policy_violation", "type": "invalid_request_error", "param": None,
                    "message": "Your request was rejected as a result of our safety system."}}


def _content_parts(body: dict[str, Any]) -> tuple[str, list[tuple[str, Image.Image]]]:
    """The text of a chat request's user turns and its (label, image) pairs, the label being the
    last line of the text part just before each image."""
    texts: list[str] = []
    images: list[tuple[str, Image.Image]] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        last = ""
        for part in content:
            if part.get("type") == "text":
                texts.append(part["text"])
                last = part["text"].strip().splitlines()[-1] if part["text"].strip() else ""
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"]
                with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
                    images.append((last, im.convert("RGB")))
    return "\n".join(texts), images


class ImageServer(ChatServer):
    def __init__(self, replies: list[str] | Callable[[dict[str, Any]], str] | None = None, *,
                 judge: list[str] | None = None, models: tuple[str, ...] = ("test-image", "test-vision", "test-model"),
                 image_latency_s: float = 0.0, side: int = 64, blocked: tuple[str, ...] = BLOCKED,
                 **kwargs: Any) -> None:
        self.judge = judge
        self.image_latency_s = image_latency_s
        self.side = side
        self.blocked = blocked
        self.image_faults: deque[str] = deque()
        self.image_always: str | None = None  # every image request gets this fault (a down endpoint)
        self.image_requests: list[dict[str, Any]] = []
        self.image_in_flight = 0
        self.judge_requests: list[dict[str, Any]] = []
        self._judge_count = 0
        self._image_lock = threading.Lock()
        super().__init__(replies or ["a blue circle on a yellow background"], models=models, **kwargs)

    @property
    def chat_in_flight(self) -> int:
        return self.in_flight

    def _reply_text(self, body: dict[str, Any]) -> str:
        text, images = _content_parts(body)
        if not images:
            return super()._reply_text(body)
        with self._lock:
            self.judge_requests.append(body)
            n, self._judge_count = self._judge_count, self._judge_count + 1
        if self.judge:
            return self.judge[n % len(self.judge)]
        return toy_judge_reply(text, images)

    def _images(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        prompt = str(body.get("prompt", ""))
        if any(word in prompt.lower() for word in self.blocked):
            return 400, POLICY
        data = []
        for _ in range(int(body.get("n") or 1)):
            buf = io.BytesIO()
            draw_prompt(prompt, self.side).save(buf, "PNG")
            data.append({"b64_json": base64.b64encode(buf.getvalue()).decode(), "revised_prompt": prompt})
        return 200, {"created": int(time.time()), "data": data}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base: Any = super()._handler()
        server = self

        class Handler(base):
            def do_POST(self) -> None:
                if not self.path.rstrip("/").endswith("/images/generations"):
                    super().do_POST()
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._image_lock:
                    server.image_requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.image_in_flight += 1
                    fault = server.image_faults.popleft() if server.image_faults else server.image_always
                try:
                    self._answer_image(body, fault)
                finally:
                    with server._image_lock:
                        server.image_in_flight -= 1

            def _answer_image(self, body: dict[str, Any], fault: str | None) -> None:
                if server.image_latency_s:
                    time.sleep(server.image_latency_s)
                if body.get("model") not in server.models:
                    self._send(404, json.dumps({"error": {"message": f"model {body.get('model')} not found"}})
                               .encode())
                elif fault == "429":
                    self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": str(server.retry_after)})
                elif fault in ("500", "503"):
                    self._send(int(fault), b'{"error": {"message": "server error"}}')
                elif fault == "policy":
                    self._send(400, json.dumps(POLICY).encode())
                elif fault == "invalid_json":
                    self._send(200, b'{"created": 1, "data": [ not json')
                else:
                    if fault == "slow":
                        time.sleep(server.slow_s)
                    status, payload = server._images(body)
                    data = json.dumps(payload).encode()
                    if fault == "cut":
                        self._send(200, data[: len(data) // 2], length=len(data))
                        self.close_connection = True
                    else:
                        self._send(status, data)

        return Handler
