"""Dashboard test fixtures: a run that the test itself drives trial by trial (a Study with the
scripted LLM and the fake scorer, asked and told here, so trials land while the page watches), and
the dashboard served by a real uvicorn on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from promptclimb.candidate import Trial
from promptclimb.proposers import build_method
from promptclimb.store import RunStore
from promptclimb.study import Study
from promptclimb.tasks import build_task
from promptclimb.testing import FakeScorer, ScriptedLLM

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

INJECTION = "a bright clear close photo of the small {} <img src=x onerror=window.pwned=1> <script>window.pwned=2</script>"
REPLIES = ["a photo of a {}, a type of object.", INJECTION, "a bright photo of the {}."]


class LiveRun:
    """A hill-climbing run recorded one trial at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.scorer = FakeScorer()
        self.study = Study(store=RunStore.create(run_dir, {"method": "hill_climb", "task": "demo", "seed": 1,
                                                            "scorer": "fake", "llm": "scripted", "shots": 1}),
                           proposer=build_method("hill_climb", {"restarts": 1, "resets": 2, "iterations": 3}),
                           scorer=self.scorer, task=build_task("demo", shots=1, seed=1).info,
                           llm=ScriptedLLM(REPLIES), seed=1)

    def record(self, n: int = 1) -> list[Trial]:
        out = []
        for _ in range(n):
            proposal = self.study.ask()
            assert proposal is not None, "the run ended before the test expected"
            template = proposal.candidate.template if proposal.candidate else None
            score = self.scorer.score(template, "train") if template else None
            out.append(self.study.tell(proposal, score, None if template else proposal.error or "no candidate"))
        return out

    def record_until(self, template: str) -> Trial:
        for _ in range(200):
            trial = self.record()[0]
            if trial.template == template:
                return trial
        raise AssertionError(f"the run never proposed {template!r}")


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
