"""The speech-dependence checks (`lightning_modules/common/metrics/speech_dependence.py`) on synthetic talking
faces whose mouths follow, or ignore, their speech: a model that ignores the speech cannot pass."""

import numpy as np
import pytest
import torch

from datamodules.synthetic.faces import render_face_crop
from datamodules.synthetic.speakers import make_speakers
from datamodules.synthetic.speech import mouth_opening, synthesize_utterance
from lightning_modules.common.metrics.speech_dependence import (
    SpeechDependence,
    frame_energy,
    identity_retrieval,
    lagged_correlations,
    mouth_box,
    region_opening,
)
from lightning_modules.common.metrics.video_metrics import FrameLandmarks

RATE, FPS, SIZE = 16000, 25, 96


def clip(profile, openings, seed=0):
    """Aligned face crops of one pose, the mouth opened per frame: `(T, SIZE, SIZE, 3)` uint8."""
    return np.stack(
        [render_face_crop(profile, float(o), SIZE, np.random.default_rng(seed)) for o in openings]
    )


@pytest.fixture(scope="module")
def talking():
    """Two 2-s utterances of one speaker, each with the frames whose mouth follows it."""
    profile = make_speakers(1, seed=3)[0]
    rng = np.random.default_rng(0)
    utterances = [synthesize_utterance(profile, 2.0, RATE, rng) for _ in range(2)]
    openings = [mouth_opening(u, FPS, 50) for u in utterances]
    return profile, [u.wave for u in utterances], openings, [clip(profile, o) for o in openings]


def test_energy_is_per_frame_and_lags_shift_the_mouth():
    speech = np.zeros(RATE)
    speech[RATE // 2 :] = 0.5
    energy = frame_energy(speech, RATE, 25)
    assert energy.shape == (25,) and energy[:12].max() < energy[13:].min()
    signal = np.sin(np.arange(40) / 3.0) + 0.1 * np.arange(40) % 1
    profile = lagged_correlations(np.roll(signal, 2), signal)  # the mouth 2 frames late
    assert np.nanargmax(profile) - 5 == 2 and profile[7] == pytest.approx(1.0, abs=0.05)


def test_a_mouth_that_follows_the_speech_passes_and_one_that_ignores_it_does_not(talking):
    profile, speech, openings, frames = talking
    closed = clip(profile, np.zeros(50))

    follows = SpeechDependence(detect=FrameLandmarks())
    follows.update(frames[0], frames[0], speech[0], RATE, control=frames[1], silent=closed)
    values, missing, lags = follows.compute()
    assert values["speech_mouth_r"] > 0.5 and values["speech_mouth_r_real"] > 0.5
    assert values["speech_mouth_r"] > values["speech_mouth_r_control"] + 0.3
    assert values["mouth_swap_sensitivity"] > 0.5 and values["silence_mouth_closed"] > 0.9
    assert abs(values["speech_mouth_r_peak_lag"]) <= 1 and len(lags["generated"]) == 11
    assert values["mouth_region_validity_r"] > 0.8  # the region measure agrees with the landmark one

    # Ignoring the speech: every input gives the same clip (its mouth moves, but after another utterance).
    ignores = SpeechDependence(detect=FrameLandmarks())
    ignores.update(frames[1], frames[0], speech[0], RATE, control=frames[1], silent=frames[1])
    values, _, _ = ignores.compute()
    assert values["speech_mouth_r"] == pytest.approx(values["speech_mouth_r_control"])
    assert values["mouth_swap_sensitivity"] == 0.0 and values["silence_mouth_closed"] == 0.5

    # A mouth that never moves follows nothing: r = 0, not "not computed".
    still = SpeechDependence(detect=FrameLandmarks())
    still.update(closed, frames[0], speech[0], RATE, control=closed, silent=closed)
    values, _, _ = still.compute()
    assert values["speech_mouth_r"] == values["speech_mouth_r_control"] == 0.0
    assert "speech_mouth_r_peak_lag" not in values  # a flat lag profile has no peak
    assert values["silence_mouth_closed"] == 0.5 and values["speech_mouth_r_real"] > 0.5


def test_a_clip_whose_generated_frames_lose_their_landmarks_scores_its_real_frames_by_the_region_too(talking):
    """One measure per clip: blurred generated frames (no face found) move the real frames to the region
    measure as well, so the real frames' r stays a ceiling on the same scale."""
    from scipy import ndimage

    _, speech, _, frames = talking
    blurred = ndimage.gaussian_filter(frames[0], (0, 6, 6, 0))
    detect = FrameLandmarks()
    assert all(detect(frame) is None for frame in blurred[:5])
    dependence = SpeechDependence(detect=detect)
    dependence.update(blurred, frames[0], speech[0], RATE)
    values, _, _ = dependence.compute()
    box = mouth_box([detect(frame) for frame in frames[0]], frames[0].shape[1:3])
    by_region = lagged_correlations(region_opening(frames[0], box), frame_energy(speech[0], RATE, 50), 0)[0]
    assert values["mouth_landmark_share"] == 0.0
    assert values["speech_mouth_r_real"] == pytest.approx(by_region)


def test_identity_from_speech_against_chance_control_and_real_faces():
    torch.manual_seed(0)
    reference = torch.nn.functional.normalize(torch.randn(5, 16), dim=1)
    real = [torch.nn.functional.normalize(reference[i] + 0.1 * torch.randn(3, 16), dim=1) for i in range(5)]
    values = identity_retrieval(reference.clone(), reference, real)  # faces that match their speakers
    assert values["speech_identity_r@1"] == 1.0 and values["speech_identity_r@1_control"] == 0.0
    assert (
        values["speech_identity_r@1_chance"] == pytest.approx(0.2)
        and values["speech_identity_r@1_real"] == 1.0
    )
    mean_face = reference.mean(0, keepdim=True).expand(5, -1)  # one face whatever the voice
    ignoring = identity_retrieval(torch.nn.functional.normalize(mean_face, dim=1), reference, real)
    assert ignoring["speech_identity_r@1"] == ignoring["speech_identity_r@1_control"] == pytest.approx(0.2)
