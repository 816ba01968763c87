"""Dashboard test fixtures: a run driven trial by trial by the test (dashboard_helpers.LiveRun), and
the dashboard served by a real uvicorn on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dashboard_helpers import LiveRun

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")


@pytest.fixture
def live_run(tmp_path: Path) -> Iterator[LiveRun]:
    run = LiveRun(tmp_path / "run")
    yield run
    run.study.store.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    import uvicorn

    from promptclimb.dashboard import bind, url_of
    from promptclimb.dashboard.app import create_app

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(path: Path) -> str:
        sock = bind("127.0.0.1", 0)
        server = uvicorn.Server(uvicorn.Config(create_app(path), log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread))
        while not server.started and thread.is_alive():
            thread.join(0.05)
        assert server.started, "the dashboard server did not start"
        return url_of(sock)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
