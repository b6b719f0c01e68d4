"""The lip-shape measure's bars are calibrated: real frames of a `lips` clip pass them, blurred as a small
generator's are too, and renderers that cheat (loudness to the jaw, loudness to the mouth's darkness, voice
activity, a periodic mouth, the identity frame, another clip's real mouth), all drawn with the demo face
generator and scored through the same measure, fail."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

from datamodules.synthetic.faces import render_frames
from datamodules.synthetic.speakers import make_speakers
from datamodules.synthetic.speech import mouth_opening, mouth_width, synthesize_utterance
from lightning_modules.common.metrics.lip_shape import (
    LipShapeScores,
    lip_sync_scores,
    lip_synced,
    partial_r,
    region_shape,
)
from lightning_modules.common.metrics.speech_dependence import frame_energy, loudness_matched, mouth_box
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
    truth = mouth_opening(said, 25, FRAMES), mouth_width(said, 25, FRAMES)
    real = render_frames(speaker, *truth[:1], SIDE, np.random.default_rng(7), truth[1])
    box = mouth_box([FrameLandmarks()(frame) for frame in real], real.shape[1:3])
    return SimpleNamespace(
        speaker=speaker, said=said, other=other, energy=energy, truth=truth, real=real, box=box
    )


def scores(clip, frames):
    return lip_sync_scores(*region_shape(frames, clip.box), *clip.truth, clip.energy)


def render(clip, opening, width):
    return render_frames(clip.speaker, opening, SIDE, np.random.default_rng(7), width)


@pytest.mark.parametrize("blur_px", [0, 2])
def test_real_frames_pass_every_bar_sharp_or_blurred(clip, blur_px):
    real = ndimage.gaussian_filter(clip.real.astype(np.float32), (0, blur_px, blur_px, 0))
    assert lip_synced(scores(clip, real))


@pytest.mark.parametrize(
    "cheat",
    ["loudness to the jaw", "loudness to darkness", "voice activity", "periodic", "identity", "other clip"],
)
def test_cheating_renderers_fail(clip, cheat):
    energy, other = clip.energy, clip.other
    loud = (energy - energy.min()) / (energy.max() - energy.min())
    still = np.ones(FRAMES)
    if cheat == "loudness to darkness":  # the identity frame, its mouth box darkened as the speech is loud
        x0, y0, x1, y1 = clip.box
        frames = np.repeat(clip.real[:1], FRAMES, axis=0).astype(np.float32)
        frames[:, y0:y1, x0:x1] *= 1.0 - 0.5 * loud[:, None, None, None]
        assert not lip_synced(scores(clip, frames.astype(np.uint8)))
        return
    opening, width = {
        "loudness to the jaw": (loud, 1 + 0.2 * (loud - 0.5)),
        "voice activity": (0.6 * (loud > 0.5), still),
        "periodic": (0.4 + 0.4 * np.sin(np.arange(FRAMES) / 3), still),
        "identity": (np.zeros(FRAMES), still),
        "other clip": (mouth_opening(other, 25, FRAMES), mouth_width(other, 25, FRAMES)),
    }[cheat]
    assert not lip_synced(scores(clip, render(clip, opening, width)))


def test_the_region_measure_agrees_with_the_landmarks_on_real_frames(clip):
    lips = LipShapeScores(FrameLandmarks())
    lips.update(clip.truth, clip.said.wave, RATE, {"_real": clip.real})
    values, _ = lips.compute()
    assert values["lip_region_validity_r_opening"] > 0.8 and values["lip_region_validity_r_width"] > 0.6


def test_loudness_matched_speech_has_the_reference_loudness(clip):
    matched = loudness_matched(clip.other.wave, clip.said.wave, RATE)
    got = frame_energy(matched, RATE, FRAMES)
    assert np.corrcoef(clip.energy, got)[0, 1] > 0.95
    assert np.corrcoef(clip.energy, frame_energy(clip.other.wave, RATE, FRAMES))[0, 1] < 0.8  # not before


def test_the_metric_suite_scores_lip_shape_when_the_clip_records_its_mouth(clip):
    from lightning_modules.common.metrics.metric_suite import GeneratedSample, MetricSettings, MetricSuite

    real, said = clip.real, clip.said
    control = render(clip, mouth_opening(clip.other, 25, FRAMES), mouth_width(clip.other, 25, FRAMES))
    suite = MetricSuite(MetricSettings())
    sample = GeneratedSample(real, real, "a", said.wave, RATE, control=control, true_mouth=clip.truth)
    sample.matched = control
    suite.update(sample)
    values, missing = suite.compute()
    assert values["lip_r_width"] > 0.8 and values["lip_r_width_real"] > 0.8  # generated = real frames here
    assert values["lip_partial_r_opening_control"] < 0.6 and values["lip_partial_r_opening_matched"] < 0.6
    assert "lip_r_opening" in suite.notes() and values["lip_region_validity_r_opening"] > 0.8
    unrecorded = MetricSuite(MetricSettings())
    unrecorded.update(GeneratedSample(real, real, "a", said.wave, RATE))
    assert "--articulation lips" in unrecorded.compute()[1]["lip_r_width"]


def test_a_clips_recorded_mouth_is_found_from_its_dataset_item(tmp_path):

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
