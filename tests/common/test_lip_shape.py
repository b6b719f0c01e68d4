"""The lip-shape measure's bars are calibrated: real frames of a `lips` clip pass them, and renderers that
cheat (loudness to the jaw, voice activity, a periodic mouth, the identity frame, another clip's real
mouth), all drawn with the demo face generator and scored through the same detector path, fail."""

import numpy as np
import pytest

from datamodules.pipeline.faces import LandmarkPredictor, build_detector
from datamodules.synthetic.faces import render_frames
from datamodules.synthetic.speakers import make_speakers
from datamodules.synthetic.speech import mouth_opening, mouth_width, synthesize_utterance
from lightning_modules.common.metrics.lip_shape import lip_sync_scores, lip_synced, partial_r, shape_series
from lightning_modules.common.metrics.speech_dependence import frame_energy

FRAMES, SIDE, RATE = 60, 192, 16000


def test_partial_r_removes_what_the_control_explains():
    rng = np.random.default_rng(0)
    loudness, vowel = rng.normal(size=200), rng.normal(size=200)
    truth = loudness + vowel
    assert partial_r(loudness + 0.01 * rng.normal(size=200), truth, loudness) < 0.3  # loudness alone
    assert partial_r(truth + 0.1 * rng.normal(size=200), truth, loudness) > 0.9  # the vowel too


@pytest.fixture(scope="module")
def clip():
    speaker = make_speakers(4, seed=0)[0]
    said = synthesize_utterance(speaker, FRAMES / 25, RATE, np.random.default_rng(0), articulation="lips")
    other = synthesize_utterance(speaker, FRAMES / 25, RATE, np.random.default_rng(1), articulation="lips")
    energy = frame_energy(said.wave, RATE, FRAMES)
    return speaker, said, other, energy


def scores(clip, opening, width):
    speaker, said, _, energy = clip
    frames = render_frames(speaker, opening, SIDE, np.random.default_rng(7), width)
    series = shape_series(frames, build_detector("dlib"), LandmarkPredictor())
    assert series is not None, "the face must be found for the measure to apply"
    return lip_sync_scores(*series, mouth_opening(said, 25, FRAMES), mouth_width(said, 25, FRAMES), energy)


def test_real_frames_pass_every_bar(clip):
    _, said, _, _ = clip
    assert lip_synced(scores(clip, mouth_opening(said, 25, FRAMES), mouth_width(said, 25, FRAMES)))


@pytest.mark.parametrize(
    "cheat", ["loudness to the jaw", "voice activity", "periodic", "identity", "other clip"]
)
def test_cheating_renderers_fail(clip, cheat):
    _, _, other, energy = clip
    loud = (energy - energy.min()) / (energy.max() - energy.min())
    still = np.ones(FRAMES)
    opening, width = {
        "loudness to the jaw": (loud, 1 + 0.2 * (loud - 0.5)),
        "voice activity": (0.6 * (loud > 0.5), still),
        "periodic": (0.4 + 0.4 * np.sin(np.arange(FRAMES) / 3), still),
        "identity": (np.zeros(FRAMES), still),
        "other clip": (mouth_opening(other, 25, FRAMES), mouth_width(other, 25, FRAMES)),
    }[cheat]
    assert not lip_synced(scores(clip, opening, width))
