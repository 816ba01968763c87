"""Screenshot of `promptclimb dashboard PATH` in headless Chromium (how docs/dashboard.png is made):
python scripts/dashboard_screenshot.py RUN_OR_GRID OUT.png [--cell ID] [--height PX]"""

from __future__ import annotations

import argparse
import shutil
import threading
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from promptclimb.dashboard import bind, url_of
from promptclimb.dashboard.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--cell", default="")
    parser.add_argument("--height", type=int, default=1400)
    args = parser.parse_args()
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(args.path), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size=1280,{args.height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        while not server.started:
            threading.Event().wait(0.05)
        driver.get(url_of(sock) + (f"#cell={args.cell}" if args.cell else ""))
        WebDriverWait(driver, 60).until(lambda d: "live" in d.find_element(By.ID, "status").get_attribute("class"))
        threading.Event().wait(1.5)  # let the first snapshot draw
        driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
        server.should_exit = True
    print(args.out)


if __name__ == "__main__":
    main()
