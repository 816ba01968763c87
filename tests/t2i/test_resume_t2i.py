"""Resume after a kill: an inversion run in a subprocess is SIGKILLed mid-run (while it waits on
the judge, after images were received), then `promptclimb resume` finishes it. No image is
generated twice (counted at the server) and every trial is recorded exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from t2i_helpers import count_trials, flags

from promptclimb.cli import main
from promptclimb.store import RunStore
from promptclimb.testing.image_server import ImageServer


def test_sigkill_then_resume_generates_nothing_twice(server: ImageServer, reference: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    server.replies = [f"a {c} {s} on a yellow background" for c in ("green", "blue", "red")
                      for s in ("circle", "square")]
    server.latency_s = 0.15  # chat (judge and LLM) is slow, images are quick
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "promptclimb.cli", "invert", str(reference),
            *flags(server, "--iterations", "6"), "--out", str(run)]
    proc = subprocess.Popen(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:  # mid-run, waiting on the judge: an image received, its trial not recorded
        judging = server.chat_in_flight and server.requests and "image_url" in json.dumps(server.requests[-1])
        if count_trials(run) >= 3 and judging and not server.image_in_flight:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = count_trials(run)
    assert 3 <= before < 7, before
    images_before = len(server.image_requests)
    store = RunStore.open(run)
    complete_before = sum(t.state.value == "complete" for t in store.trials())
    store.close()
    assert images_before == complete_before + 1  # the image whose judging was cut short

    capsys.readouterr()
    assert main(["resume", str(run)]) == 0
    assert "replaying them without generating again" in " ".join(capsys.readouterr().out.split())

    generated = Counter(b["prompt"] for b in server.image_requests)
    assert generated and max(generated.values()) == 1, generated  # no prompt was generated twice
    assert len(server.image_requests) > images_before  # the run went on after the kill
    store = RunStore.open(run)
    stored = store.stored_trials()
    assert store.finished and len(stored) == 7 and len({st.key for st in stored}) == 7
    complete = [st.trial for st in stored if st.trial.state.value == "complete"]
    assert {t.template for t in complete} == set(generated)
    judged = [c for c in store.calls("judge") if c.response is not None]
    assert len(judged) == len(complete) + 1  # each image judged once, plus the first look at the reference
    store.close()
