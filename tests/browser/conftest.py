"""Headless Chromium for the browser tests, driven by selenium.

Debian's `chromium` and `chromium-driver` packages (`.ci/run` installs them). Where either is absent the
tests here are skipped with that reason, so `make test` stays green on a machine without a browser.
"""

import io
import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless, as root in a container, on a machine with no network: Chromium's own background connections
# (updates, sync, safe browsing) would be refused one by one, so they are switched off.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1400,1000",
)


def pytest_collection_modifyitems(config, items):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if missing:
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"{' and '.join(missing)} absent: apt-get install chromium chromium-driver"
                    )
                )


@pytest.fixture
def browser(tmp_path):
    """A fresh headless Chromium (its own empty profile), closed after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


# The screenshots in docs/images come from these tests: `TF_SCREENSHOT_DIR=docs/images make test
# ARGS=tests/browser` writes them there (otherwise into the test's temporary folder only).
SCREENSHOT_DIR_VARIABLE = "TF_SCREENSHOT_DIR"


def save_screenshot(driver, folder: Path, name: str, most_height: int = 1500) -> Path:
    """A PNG of the page's top `most_height` pixels as the browser draws it, paletted to keep the docs' copy
    small, into `folder` and, when `TF_SCREENSHOT_DIR` is set, there as well."""
    from PIL import Image

    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(driver.get_window_size()["width"], min(height, most_height))
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.5)  # the resized page draws its video frames again
    path = folder / name
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image.quantize(colors=128).save(path, optimize=True)
    if target := os.environ.get(SCREENSHOT_DIR_VARIABLE):
        shutil.copyfile(path, Path(target) / name)
    return path


def media_states(driver) -> list[dict]:
    """Every <video>, <audio> and <img> on the page: its source, and whether it loaded
    (`readyState` ≥ 2 for media, i.e. the current frame is decoded; natural size > 0 for images)."""
    return driver.execute_script(
        """
        const out = [];
        for (const m of document.querySelectorAll('video, audio')) {
          out.push({tag: m.tagName.toLowerCase(), src: m.currentSrc || m.src, ready: m.readyState,
                    duration: m.duration, width: m.videoWidth || 0, error: m.error ? m.error.code : null});
        }
        for (const i of document.querySelectorAll('img')) {
          out.push({tag: 'img', src: i.currentSrc || i.src, ready: i.complete ? 4 : 0,
                    width: i.naturalWidth, height: i.naturalHeight});
        }
        return out;
        """
    )
