"""Compatibility with a server we did not write: llama-cpp-python's OpenAI-compatible server
serving the embedded model, driven by our openai backend through the official SDK."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from promptclimb.llm.base import ChatRequest, Message
from promptclimb.llm.llamacpp import resolve_model
from promptclimb.llm.openai_compat import OpenAICompatLLM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_openai_backend_against_llama_cpp_server(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    port = _free_port()
    model = resolve_model("smollm2")
    # The server's log goes to a file: a pipe nobody reads fills up and blocks the server.
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"llama_cpp.server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        llm = OpenAICompatLLM("smollm2", base_url=f"http://127.0.0.1:{port}/v1", api_key_env="", timeout=60)
        llm.check()
        reply = llm.chat(ChatRequest((Message("user", "Name one fruit."),), max_tokens=16, temperature=0.0, seed=1))
        assert reply.text.strip() and reply.prompt_tokens > 0 and reply.completion_tokens > 0
        assert reply.model == "openai:smollm2"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        log.close()
