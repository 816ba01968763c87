"""The dashboard in a real browser (Debian's headless Chromium through selenium and chromium-driver):
the page shows the run, then a trial the run records while the page is open appears without a
reload, and the LLM text it holds is shown as text, never run as markup. A screenshot is left in
the test's output folder (dashboard.png)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import INJECTION, LiveRun

from promptclimb.candidate import TrialState

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WAIT_S = 60  # an upper bound for slow machines, not a timing assertion

needs_browser = pytest.mark.skipif(
    (CHROMIUM is None or DRIVER is None) and not os.environ.get("CI"), reason="chromium or chromium-driver missing")


@pytest.fixture
def browser() -> Iterator[Any]:
    assert CHROMIUM and DRIVER, "CI must have chromium and chromium-driver (scripts/install.sh --dev)"
    try:
        from selenium import webdriver
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("selenium not installed (scripts/install.sh --dev installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1500", "--no-first-run", "--disable-background-networking"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def wait_for(driver: Any, check: Callable[[Any], Any], what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(check, message=what)


def trial_rows(driver: Any) -> int:
    return int(driver.execute_script("return document.querySelectorAll('#run-trials tr[data-trial]').length"))


@needs_browser
def test_a_new_trial_appears_without_a_reload_as_text(live_run: LiveRun, serve: Callable[[Path], str],
                                                      browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    live_run.record(20)
    browser.get(serve(live_run.dir))
    wait_for(browser, lambda d: trial_rows(d) == 20, "the page to show the 20 pool trials")
    assert "hill_climb on demo" in browser.find_element(By.ID, "title").text
    browser.execute_script("window.sameDocument = 'still here';")

    new = live_run.record_until(INJECTION)
    row = wait_for(browser, lambda d: d.execute_script(
        "const r = document.querySelector(`#run-trials tr[data-trial='${arguments[0]}']`);"
        "return r ? r.textContent : false;", new.number), "the page to show the trial recorded after it opened")
    assert INJECTION in row  # shown as typed, not as markup
    assert browser.execute_script("return window.sameDocument") == "still here"  # no reload happened
    assert browser.execute_script("return window.pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "#run-trials img, #run-conversations img") == []
    assert browser.title == "promptclimb dashboard"
    dots = browser.find_elements(By.CSS_SELECTOR, "#run-curve circle")
    assert len(dots) == sum(t.state is TrialState.COMPLETE for t in live_run.study.trials())
    assert "live" in browser.find_element(By.ID, "status").get_attribute("class")
    shot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


@needs_browser
def test_grid_cells_finish_on_the_open_page_and_open_as_runs(tmp_path: Path, serve: Callable[[Path], str],
                                                              browser: Any) -> None:
    from selenium.webdriver.common.by import By

    from promptclimb.bench.grid import GridSpec, save_spec
    from promptclimb.bench.runner import InProcessExecutor, run_grid

    spec = GridSpec(tasks=["demo"], shots=[1], seeds=[1, 2], methods=["best_of_pool", "fixed:a photo of a {}."],
                    scorers=["fake"], llm="scripted", budget=25, cache_dir=str(tmp_path / "cache"))
    grid = tmp_path / "grid"
    run_grid(spec.model_copy(update={"seeds": [1]}), grid, InProcessExecutor())
    save_spec(spec, grid)  # seed 2 not started yet
    browser.get(serve(grid))

    def states(d: Any) -> list[str]:  # read in one script call: the table may be redrawn meanwhile
        return list(d.execute_script("return [...document.querySelectorAll('#grid-cells td:nth-child(2)')]"
                                     ".map((td) => td.textContent)"))

    wait_for(browser, lambda d: sorted(states(d)) == ["finished", "finished", "pending", "pending"],
             "the page to show two finished and two pending cells")
    browser.execute_script("window.sameDocument = 'still here';")
    run_grid(spec, grid, InProcessExecutor())
    wait_for(browser, lambda d: states(d) == ["finished"] * 4, "the page to show every cell finished")
    assert browser.execute_script("return window.sameDocument") == "still here"
    assert "best_of_pool" in browser.find_element(By.ID, "grid-test").text
    browser.find_element(By.CSS_SELECTOR, "#grid-cells a").click()
    wait_for(browser, lambda d: trial_rows(d) == 20, "the cell's own view with its 20 pool trials")
    assert "cell demo__1shot__seed1__best_of_pool__fake" in browser.find_element(By.ID, "title").text
