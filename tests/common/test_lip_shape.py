"""The lip-shape measure's bars are calibrated: real frames of a `lips` clip pass them, and renderers that
cheat (loudness to the jaw, voice activity, a periodic mouth, the identity frame, another clip's real
mouth), all drawn with the demo face generator and scored through the same detector path, fail."""

import numpy as np
import pytest

from datamodules.synthetic.faces import render_frames
from datamodules.synthetic.speakers import make_speakers
from datamodules.synthetic.speech import mouth_opening, mouth_width, synthesize_utterance
from lightning_modules.common.metrics.lip_shape import (
    lip_sync_scores,
    lip_synced,
    partial_r,
    series_from_marks,
)
from lightning_modules.common.metrics.speech_dependence import frame_energy
from lightning_modules.common.metrics.video_metrics import FrameLandmarks

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
    detect = FrameLandmarks()  # the detector path the metric suite scores with
    series = series_from_marks([detect(frame) for frame in frames])
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


def test_the_metric_suite_scores_lip_shape_when_the_clip_records_its_mouth(clip):
    from lightning_modules.common.metrics.metric_suite import GeneratedSample, MetricSettings, MetricSuite

    speaker, said, other, _ = clip
    truth = (mouth_opening(said, 25, FRAMES), mouth_width(said, 25, FRAMES))
    real = render_frames(speaker, *truth[:1], SIDE, np.random.default_rng(7), truth[1])
    control = render_frames(
        speaker,
        mouth_opening(other, 25, FRAMES),
        SIDE,
        np.random.default_rng(7),
        mouth_width(other, 25, FRAMES),
    )
    suite = MetricSuite(MetricSettings())
    sample = GeneratedSample(real, real, "a", said.wave, RATE, control=control, true_mouth=truth)
    suite.update(sample)
    values, missing = suite.compute()
    assert values["lip_r_width"] > 0.8 and values["lip_r_width_real"] > 0.8  # generated = real frames here
    assert values["lip_partial_r_opening_control"] < 0.6 and "lip_r_opening" in suite.notes()
    unrecorded = MetricSuite(MetricSettings())
    unrecorded.update(GeneratedSample(real, real, "a", said.wave, RATE))
    assert "--articulation lips" in unrecorded.compute()[1]["lip_r_width"]


def test_a_clips_recorded_mouth_is_found_from_its_dataset_item(tmp_path):
    from types import SimpleNamespace

    from datamodules.synthetic import generate_dataset
    from datamodules.synthetic.truth import read_truth
    from lightning_modules.common.metrics.shared_evaluation import recorded_mouth

    root = generate_dataset("lrw", tmp_path / "lrw", size="tiny", articulation="lips")
    clip = sorted(root.glob("lipread_mp4/*/test/*.mp4"))[0]
    dataset = SimpleNamespace(items=SimpleNamespace(metas=[{"path": str(clip)}]), rows=[0])
    opening, width = recorded_mouth(SimpleNamespace(root=root), dataset, 0, first=4, frames=10)
    assert np.array_equal(opening, read_truth(root, clip)[0][4:14]) and len(width) == 10
    jaw = generate_dataset("lrw", tmp_path / "jaw", size="tiny")
    plain = SimpleNamespace(
        items=SimpleNamespace(metas=[{"path": str(sorted(jaw.rglob("*.mp4"))[0])}]), rows=[0]
    )
    assert recorded_mouth(SimpleNamespace(root=jaw), plain, 0, 0, 10) is None
