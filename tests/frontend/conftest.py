"""Browser-test fixtures: one real `terradream serve` (tiny model, an extra image world) and Debian's headless
Chromium through chromedriver, shared by the frontend test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from frontend.browser import LOAD_TIMEOUT_S, MARKUP_IMAGE_NAME, MARKUP_WORLD, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServerProcess]:
    """`terradream serve` with the tiny random-init model and an empty embedded cache, healthy before tests run."""
    workdir = tmp_path_factory.mktemp("viewer-server")
    # An image world whose file name is markup: its attribution and description must reach the page as text.
    image = workdir / MARKUP_IMAGE_NAME
    Image.linear_gradient("L").resize((128, 64)).convert("RGB").save(image, format="PNG")
    proc = ServerProcess(tiny_model_dir, workdir / "cache", workdir / "server.log", {MARKUP_WORLD: image})
    try:
        proc.wait_ok("/readyz", 120.0)  # the viewer asks for /worlds at once: the model must be loaded
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Debian's headless Chromium through chromedriver, console logging on, WebGL by SwiftShader (for MapLibre)."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: install Debian's chromium and chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=800,600",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_script_timeout(LOAD_TIMEOUT_S)
    try:
        yield browser
    finally:
        browser.quit()
