"""The dashboard's server, over real HTTP on loopback: what a run's and a grid's state hold, that
an unchanged store answers with its version alone, that nothing outside the watched directory can
be fetched, and the command's URL and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import INJECTION, LiveRun

from promptclimb.bench.grid import GridSpec, cells, save_spec
from promptclimb.bench.runner import InProcessExecutor, cell_dir, run_grid
from promptclimb.cli import main
from promptclimb.dashboard.app import create_app
from promptclimb.store import RunStore, StoreError

Serve = Callable[[Path], str]


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def state(base: str, **query: str) -> dict[str, Any]:
    status, _, body = get(base + "api/state?" + "&".join(f"{k}={v}" for k, v in query.items()))
    assert status == 200, body
    return json.loads(body)


def test_run_state_follows_the_store_as_trials_land(live_run: LiveRun, serve: Serve) -> None:
    live_run.record(20)  # the starting pool
    base = serve(live_run.dir)
    first = state(base)
    assert first["kind"] == "run" and len(first["trials"]) == 20
    assert [p["best"] for p in first["curve"]] == sorted(p["best"] for p in first["curve"])
    assert state(base, v=first["version"]) == {"version": first["version"]}  # nothing new: no snapshot
    live_run.record_until(INJECTION)
    later = state(base, v=first["version"])
    assert later["version"] != first["version"] and len(later["trials"]) > 20
    assert INJECTION in [t["template"] for t in later["trials"]]  # as stored: the page escapes it
    convo = later["conversations"][0]
    assert convo["messages"][0]["role"] in ("system", "user") and convo["messages"][-1]["role"] == "assistant"


@pytest.mark.parametrize("path", [
    "run.sqlite", "..%2Frun.sqlite", "%2e%2e/%2e%2e/etc/passwd", "static/../run.sqlite", "../../etc/passwd",
    "dashboard.js/../run.sqlite", "api/state?cell=..%2F..%2Frun", "api/state?cell=%2Fetc%2Fpasswd",
])
def test_nothing_outside_the_page_and_its_api_is_served(live_run: LiveRun, serve: Serve, path: str) -> None:
    live_run.record(2)
    (live_run.dir / "secret.txt").write_text("SECRET")
    status, _, body = get(serve(live_run.dir) + path)
    assert status == 404
    assert b"SQLite format" not in body and b"SECRET" not in body and b"root:" not in body


def test_a_foreign_host_name_is_refused(live_run: LiveRun, serve: Serve) -> None:
    base = serve(live_run.dir)
    request = urllib.request.Request(base + "api/state", headers={"Host": "rebound.example"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 400
    assert get(base.replace("127.0.0.1", "localhost") + "api/state")[0] == 200


def test_page_script_and_style_carry_a_strict_content_policy(live_run: LiveRun, serve: Serve) -> None:
    base = serve(live_run.dir)
    for name, kind in (("", "text/html"), ("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        status, headers, _ = get(base + name)
        assert status == 200 and headers["content-type"].startswith(kind)
        assert "script-src 'self'" in headers["content-security-policy"] and "unsafe-inline" not in \
            headers["content-security-policy"]
    script = get(base + "dashboard.js")[2].decode()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script


def test_grid_state_has_cells_states_and_tables(tmp_path: Path, serve: Serve) -> None:
    spec = GridSpec(tasks=["demo"], shots=[1], seeds=[1, 2], methods=["best_of_pool", "fixed:a photo of a {}."],
                    scorers=["fake"], llm="scripted", budget=25, cache_dir=str(tmp_path / "cache"))
    grid = tmp_path / "grid"
    run_grid(spec, grid, InProcessExecutor())
    bigger = spec.model_copy(update={"seeds": [1, 2, 3, 4]})  # seed 3: started, unfinished; seed 4: pending
    save_spec(bigger, grid)
    started = [cell_dir(grid, c) for c in cells(bigger) if c.seed == 3]
    for d in started:
        RunStore.create(d, {}).close()
    old = time.time() - 3600
    for f in started[1].glob("run.sqlite*"):
        os.utime(f, (old, old))  # not written for an hour: shown as stopped, not running
    base = serve(grid)
    snap = state(base)
    assert snap["kind"] == "grid" and snap["counts"] == {"finished": 4, "running": 1, "stopped": 1, "pending": 2}
    assert snap["tables"]["test"]["header"][:2] == ["method", "demo"]
    assert [row[0] for row in snap["tables"]["test"]["rows"]] == ["best_of_pool", "fixed:a photo of a {}."]
    finished = next(c for c in snap["cells"] if c["state"] == "finished")
    cell = state(base, cell=finished["id"])
    assert cell["kind"] == "run" and cell["summary"]["finished"] and cell["cell"] == finished["id"]
    pending = next(c for c in snap["cells"] if c["state"] == "pending")
    assert get(base + f"api/state?cell={pending['id']}")[0] == 404


def test_a_directory_that_is_neither_run_nor_grid_is_one_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StoreError, match="neither a run directory"):
        create_app(tmp_path)
    assert main(["dashboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass the --out of" in err


def test_command_binds_loopback_prints_its_url_and_serves(live_run: LiveRun) -> None:
    live_run.record(3)
    proc = subprocess.Popen([sys.executable, "-m", "promptclimb.cli", "dashboard", str(live_run.dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url is not None, line + (proc.stderr.read() if proc.stderr and proc.poll() is not None else "")
        status, _, body = get(url.group(0))
        assert status == 200 and b"promptclimb dashboard" in body
        assert len(state(url.group(0))["trials"]) == 3
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_busy_port_is_one_line_with_the_fix(live_run: LiveRun, capsys: pytest.CaptureFixture[str]) -> None:
    from promptclimb.dashboard import bind

    taken = bind("127.0.0.1", 0)
    try:
        assert main(["dashboard", str(live_run.dir), "--port", str(taken.getsockname()[1])]) == 2
    finally:
        taken.close()
    assert "pass another --port, or --port 0" in capsys.readouterr().err
