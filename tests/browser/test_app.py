"""`make app` driven end to end in headless Chromium: a demo speech file and photo in, a playable video with
the speech's duration out, beside a face system's face; a photo without a face shows its one-line error."""

import math
import socket
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

WAIT_S = 120  # the first request loads dlib and traces the models


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def demo_inputs(tmp_path):
    """(speech wav, photo png, seconds of speech): the sound and first frame of a demo LRW clip."""
    import av
    import soundfile as sf
    from PIL import Image

    from datamodules.base import data_root
    from datamodules.synthetic import ensure_dataset

    root = ensure_dataset("lrw", data_root() / "demo" / "tiny" / "lrw", size="tiny")
    clip = sorted(root.rglob("*.mp4"))[0]
    with av.open(str(clip)) as container:
        photo = next(container.decode(video=0)).to_ndarray(format="rgb24")
    with av.open(str(clip)) as container:
        rate = container.streams.audio[0].rate
        speech = np.concatenate([frame.to_ndarray().mean(0) for frame in container.decode(audio=0)])
    sf.write(tmp_path / "speech.wav", speech, rate)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(tmp_path / "no-face.png")
    return tmp_path / "speech.wav", tmp_path / "photo.png", len(speech) / rate


@pytest.fixture
def served_app(smoke_run):
    """The app serving a video system (E2E-NR) and a face system (SF2F) side by side → its URL."""
    from experiments.app import load_models, serve

    models = load_models([str(smoke_run("e2e_nr")), str(smoke_run("sf2f"))], None)
    app, url = serve(models, free_port(), block=False)
    yield url
    app.close()


def wait_for(condition, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s")


def upload(driver, element_id: str, path: Path) -> None:
    driver.find_element("css selector", f"#{element_id} input[type=file]").send_keys(str(path))


def message(driver, index: int) -> str:
    return driver.find_element("css selector", f"#message-{index}").text.strip()


def test_the_app_turns_a_demo_speech_file_and_photo_into_a_playable_video(
    browser, served_app, demo_inputs, tmp_path
):
    from tests.browser.conftest import media_states, save_screenshot

    speech, photo, seconds = demo_inputs
    browser.get(served_app)
    wait_for(lambda: browser.find_elements("css selector", "#generate"))
    upload(browser, "speech", speech)
    upload(browser, "photo", photo)
    wait_for(lambda: browser.find_elements("css selector", "#photo img"))
    time.sleep(1)  # the audio component finishes its upload
    browser.find_element("css selector", "#generate").click()
    with urllib.request.urlopen(served_app, timeout=5) as page:  # served while the request generates
        assert page.status == 200
    wait_for(lambda: message(browser, 0) and message(browser, 1))
    assert message(browser, 0).startswith(f"{math.ceil(seconds * 25)} frames at 25 fps"), message(browser, 0)

    def loaded():
        states = media_states(browser)
        videos = [s for s in states if s["tag"] == "video"]
        pictures = [s for s in states if s["tag"] == "img" and "speech_dependence" in s["src"]]
        return states if videos and videos[0]["ready"] >= 2 and len(pictures) == 2 else None

    states = wait_for(loaded, 30)
    video = next(s for s in states if s["tag"] == "video")
    assert video["error"] is None and video["width"] == 128
    assert abs(video["duration"] - seconds) < 0.1, (video["duration"], seconds)  # the speech is its sound
    images = [s for s in states if s["tag"] == "img"]
    assert len(images) >= 4 and all(s["width"] > 0 for s in images), images  # photo, face, two pictures
    assert save_screenshot(browser, tmp_path, "app.png").stat().st_size > 0
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(urlparse(url).hostname in (None, "127.0.0.1") for url in fetched), fetched

    upload(browser, "photo", demo_inputs[1].parent / "no-face.png")
    time.sleep(1)
    browser.find_element("css selector", "#generate").click()
    error = wait_for(lambda: message(browser, 0).startswith("error:") and message(browser, 0))
    assert "no-face.png: no face found in the picture" in error
    assert message(browser, 1).startswith("a ")  # the face system needs no photo
