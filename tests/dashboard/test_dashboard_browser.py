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
from conftest import INJECTION, LiveRun

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


def trial_rows(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#run-trials tr[data-trial]")


@needs_browser
def test_a_new_trial_appears_without_a_reload_as_text(live_run: LiveRun, serve: Callable[[Path], str],
                                                      browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    live_run.record(20)
    browser.get(serve(live_run.dir))
    wait_for(browser, lambda d: len(trial_rows(d)) == 20, "the page to show the 20 pool trials")
    assert "hill_climb on demo" in browser.find_element(By.ID, "title").text
    browser.execute_script("window.sameDocument = 'still here';")

    new = live_run.record_until(INJECTION)
    row = wait_for(browser, lambda d: next((r for r in trial_rows(d)
                                            if r.get_attribute("data-trial") == str(new.number)), False),
                   "the page to show the trial recorded after it opened")
    assert INJECTION in row.text  # shown as typed, not as markup
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
