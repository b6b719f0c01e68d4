"""Wav2Pix's open-set rows: faces generated from held-out youtubers' speech, retrieved among their real faces.

Generators with a known answer check the scoring: one that returns the speaker's own face retrieves every
held-out youtuber and never the control's, one that ignores the speech scores chance on both.
"""

import pytest
import torch

from lightning_modules.wav2pix.evaluation import (
    OPEN_SET_CHANCE_METRIC,
    OPEN_SET_CONTROL_SETTING,
    OPEN_SET_METRIC,
    OPEN_SET_REAL_METRIC,
    OPEN_SET_SETTING,
    evaluate,
    open_set_hits,
)

SIZE = 64  # the smallest side Wav2Pix's generator draws


class FaceLookup:
    """A stand-in generator: the face it draws for each speech window of the evaluated splits is
    `draw(the real face paired with it)`."""

    device = torch.device("cpu")

    def __init__(self, datamodule, draw):
        datasets = [datamodule.evaluation_dataset(split) for split in ("train", "test", "open_set_test")]
        items = [dataset[i] for dataset in datasets for i in range(len(dataset))]
        self.faces = {item["audio"].numpy().tobytes(): item["face"] for item in items}
        self.draw = draw

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        """`(B, T)` speech → `(B, 3, S, S)` faces in [-1, 1]."""
        return torch.stack([self.draw(self.faces[window.numpy().tobytes()]) for window in audio])

    def eval(self):
        return self


def mean_over_speakers(hits: dict, key: str) -> float:
    return sum(sum(v[key]) / len(v[key]) for v in hits.values()) / len(hits)


def test_a_generator_drawing_the_speakers_own_face_retrieves_every_held_out_youtuber(open_set):
    hits = open_set_hits(FaceLookup(open_set, lambda face: face), open_set)
    assert sorted(hits) == open_set.open_set_identities
    assert all(len(values["r@1"]) == 2 for values in hits.values())  # one value per test pair
    assert mean_over_speakers(hits, "r@1") == mean_over_speakers(hits, "r@1_real") == 1.0
    assert mean_over_speakers(hits, "r@1_control") == 0.0


def test_a_generator_that_ignores_the_speech_scores_chance(open_set):
    # A horizontal ramp: a flat face would embed to nothing, as the thumbnail removes each face's mean.
    ramp = 0.1 * torch.linspace(-1, 1, SIZE).expand(3, SIZE, SIZE)
    hits = open_set_hits(FaceLookup(open_set, lambda face: ramp), open_set)
    # One face for every speech: the same youtuber comes first for all, a hit for one of the two.
    assert mean_over_speakers(hits, "r@1") == mean_over_speakers(hits, "r@1_control") == 0.5


def test_the_report_adds_the_open_set_rows_and_their_per_speaker_hits(open_set):
    # The stand-in keeps the test quick; dlib's probe is quicker to fit than the CNN.
    report = evaluate(FaceLookup(open_set, lambda face: face), open_set, probe="dlib")
    rows = {(row.metric, row.setting): row.ours for row in report.rows}
    assert rows[(OPEN_SET_CHANCE_METRIC, OPEN_SET_SETTING)] == pytest.approx(50.0)  # 2 held out
    hits = report.details["open_set"]
    assert sorted(hits) == open_set.open_set_identities and report.details["open_set_embedder"] == "thumbnail"
    assert rows[(OPEN_SET_METRIC, OPEN_SET_SETTING)] == 100 * mean_over_speakers(hits, "r@1") == 100.0
    assert rows[(OPEN_SET_METRIC, OPEN_SET_CONTROL_SETTING)] == 100 * mean_over_speakers(hits, "r@1_control")
    assert rows[(OPEN_SET_REAL_METRIC, "real faces")] == 100.0
    assert report.details["chance_accuracy"] == 50.0  # the closed-set rows count the 2 trained youtubers
    # The closed-set accuracy, per trained youtuber and face, for a proof that resamples youtubers.
    closed = report.details["test_hits"]
    assert sorted(closed) == sorted(open_set.identities)
    faces = [v for values in closed.values() for v in values["accuracy"]]
    accuracy = rows[("identity accuracy (%)", "speech from test partition")]
    assert 100 * sum(faces) / len(faces) == pytest.approx(accuracy)
