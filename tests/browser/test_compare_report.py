"""`make compare`'s report opened in headless Chromium: every clip, face, speech and picture loads and plays,
from a copy of the report folder elsewhere (so it holds everything it links to, by relative links)."""

import json
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from experiments.compare import compare
from experiments.evaluate import SharedOptions, evaluate

from .conftest import media_states, save_screenshot

READY_SECONDS = 20
CLIPS = 2  # test clips per run: enough for a row with two of them, cheap to generate
E2E_NR_OPTIONS = {"max_clips": 1, "snrs_db": [20], "noise_types": ["babble"], "landmarks": False}


def light_copy(stage: Path, runs: Path) -> Path:
    """The stage's records without its checkpoints, at `runs/<experiment>/<launch>/<stage>` (same label)."""
    copy = runs.joinpath(*stage.resolve().parts[-3:])
    shutil.copytree(stage, copy, ignore=shutil.ignore_patterns("checkpoints", "wandb", "*.ckpt"))
    return copy


def evaluated_copy(experiment: str, stage: Path, runs: Path, options: dict) -> Path:
    """A light copy of `stage` holding `make eval`'s results for its checkpoint (clips included)."""
    copy = light_copy(stage, runs)
    shared = SharedOptions(max_items=CLIPS, report_clips=CLIPS)
    evaluate(experiment, [str(stage)], None, str(copy / "eval"), options, use_wandb=False, shared=shared)
    return copy


@pytest.fixture
def report(smoke_run, tmp_path):
    """A video system (E2E-NR), a face system (SF2F) and a run never evaluated, compared, then the report
    folder moved to another place."""
    runs = tmp_path / "runs"
    video = evaluated_copy("e2e_nr", smoke_run("e2e_nr") / "e2e_nr_adv", runs, E2E_NR_OPTIONS)
    face = evaluated_copy("sf2f", smoke_run("sf2f") / "sf2f_fuser", runs, {})
    bare = light_copy(smoke_run("e2e_nr") / "e2e_nr", runs)
    compare([str(video), str(face), str(bare)], out=str(tmp_path / "compare"))
    moved = shutil.copytree(tmp_path / "compare", tmp_path / "elsewhere" / "report")
    shutil.rmtree(tmp_path / "compare")
    return moved / "report.html"


def wait_until_loaded(driver) -> list[dict]:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        states = media_states(driver)
        if all(s["ready"] >= 2 or s.get("error") for s in states) or time.monotonic() > deadline:
            return states


def played_seconds(driver) -> list[float]:
    """Play every video and audio muted for half a second; how far each got."""
    return driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const media = [...document.querySelectorAll('video, audio')];
        for (const m of media) { m.muted = true; m.play(); }
        setTimeout(() => done(media.map(m => m.currentTime)), 500);
        """
    )


def links(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)


def test_every_clip_face_and_picture_of_the_report_loads_and_plays(report, browser, tmp_path):
    folder = report.parent
    page = report.read_text()
    assert all(
        not urlparse(link).scheme and not link.startswith("/") and ".." not in link for link in links(page)
    )
    assert "speech_mouth_r" in page and "mouth_swap_sensitivity" in page and "speech_identity_r@1" in page
    assert "no test clips" in page and "make eval EXP=e2e_nr CKPT=" in page  # the run never evaluated

    browser.get(report.as_uri())
    states = wait_until_loaded(browser)
    media = [s for s in states if s["tag"] in ("video", "audio")]
    by_tag = {tag: [s for s in states if s["tag"] == tag] for tag in ("video", "audio", "img")}
    # E2E-NR: CLIPS rows of real, generated and control; SF2F: CLIPS faces with their speech
    assert len(by_tag["video"]) == 3 * CLIPS and len(by_tag["audio"]) == CLIPS
    for state in media:
        assert state["error"] is None and state["ready"] >= 2, state
    for state in by_tag["img"]:
        assert state["width"] > 0 and state["height"] > 0, state
    assert all(Path(urlparse(s["src"]).path).is_relative_to(folder) for s in states)
    assert all(now > 0 for now in played_seconds(browser))

    assert save_screenshot(browser, tmp_path, "compare_report.png").stat().st_size > 0

    expected = expected_seconds(folder)
    for state in media:
        name = Path(urlparse(state["src"]).path).name
        assert state["duration"] == pytest.approx(expected[name], abs=0.1), name


def expected_seconds(folder: Path) -> dict[str, float]:
    """Each clip's speech length from the index `make eval` wrote (the same for real, generated and
    control: the control's speech is fitted to the clip)."""
    seconds = {}
    for index in folder.glob("run-*/clips/index.json"):
        for clip in json.loads(index.read_text())["clips"]:
            for side in ("generated", "real", "control", "speech"):
                if side in clip:
                    seconds[clip[side]] = clip["seconds"]
    return seconds
