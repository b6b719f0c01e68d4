"""Wav2Pix's evaluation protocol, run by `make eval EXP=wav2pix CKPT=…`.

1. Identity accuracy: a classifier fitted on the real training faces names the identity of each face
   generated from (a) training-partition speech and (b) test-partition speech; top-1 against the speaker.
   Its control (not in the paper) scores the faces from speaker k+1's test speech as speaker k's: what a
   generator that ignores the speech reaches (chance), whichever faces it draws.
2. Landmark detection rate: share of faces generated from test speech in which dlib finds all 68 points
   (`common/metrics/face_checks.py`), reported per speech length (the paper's 300 / 700 / 1000 ms sweep is one
   checkpoint per length).
Sanity bounds measured on real faces in the same run: detection rate and probe accuracy on real test faces.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from datamodules.youtubers import YoutubersDataModule

from ..common.metrics.face_checks import face_found
from ..common.metrics.identity_probe import build_probe
from ..common.metrics.reports import EvaluationReport, ResultRow

PAPER_IDENTITY_ACCURACY = {"train": 76.81, "test": 50.08}
PAPER_DETECTION_RATE = {4800: 81.16, 11200: 89.12, 16000: 90.25}
CONTROL_SETTING = "control: test speech of another speaker"


@torch.no_grad()
def _generate(module, dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generated faces, real faces (both `(N, 3, S, S)` in [0, 1]) and speaker indices `(N,)`."""
    fakes, reals, identities = [], [], []
    for batch in DataLoader(dataset, batch_size=64, shuffle=False):
        fakes.append((module(batch["audio"].to(module.device)).cpu() + 1) / 2)
        reals.append((batch["face"] + 1) / 2)
        identities.append(batch["identity"])
    return torch.cat(fakes).clamp(0, 1), torch.cat(reals), torch.cat(identities)


def evaluate(module, datamodule: YoutubersDataModule, probe: str = "cnn") -> EvaluationReport:
    module.eval()
    generated = {
        split: _generate(module, datamodule.evaluation_dataset(split)) for split in ("train", "test")
    }
    real_train, train_ids = generated["train"][1], generated["train"][2]
    classifier = build_probe(probe).fit(real_train, train_ids)
    predicted = {split: classifier.predict(fake) for split, (fake, _, _) in generated.items()}
    accuracy = {
        split: 100 * (predicted[split] == ids).float().mean().item()
        for split, (_, _, ids) in generated.items()
    }
    fake_test, real_test, test_ids = generated["test"]
    another_speaker = (test_ids - 1) % datamodule.num_identities  # the face from k+1's speech, named as k
    control = 100 * (predicted["test"] == another_speaker).float().mean().item()
    detection = 100 * face_found(fake_test).float().mean().item()
    chance = 100 / datamodule.num_identities
    samples = datamodule.hparams.audio_samples
    report = EvaluationReport(
        system="Wav2Pix", dataset=datamodule.description, paper_dataset="real Youtubers, 10 ids"
    )
    note = f"probe: {classifier.name}; chance {chance:.1f}%"
    report.rows += [
        ResultRow(
            "identity accuracy (%)",
            "speech from train partition",
            accuracy["train"],
            PAPER_IDENTITY_ACCURACY["train"],
            note,
        ),
        ResultRow(
            "identity accuracy (%)",
            "speech from test partition",
            accuracy["test"],
            PAPER_IDENTITY_ACCURACY["test"],
            note,
        ),
        ResultRow(
            "identity accuracy (%)",
            CONTROL_SETTING,
            control,
            None,
            f"faces from speaker k+1's test speech scored as speaker k's; {note}",
        ),
        ResultRow(
            "landmark detection rate (%)",
            f"test speech, {samples / 16:.0f} ms",
            detection,
            PAPER_DETECTION_RATE.get(samples),
            "dlib HOG + 68 points, 64-px border",
        ),
        ResultRow(
            "sanity: detection rate on real test faces (%)",
            "real faces",
            100 * face_found(real_test).float().mean().item(),
        ),
        ResultRow(
            "sanity: probe accuracy on real test faces (%)",
            "real faces",
            100 * (classifier.predict(real_test) == test_ids).float().mean().item(),
        ),
    ]
    report.details = {
        "audio_samples": samples,
        "image_size": datamodule.hparams.image_size,
        "probe": probe,
        "generated": {split: len(g[0]) for split, g in generated.items()},
        "chance_accuracy": chance,
    }
    return report
