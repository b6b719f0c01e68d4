"""The landmark detection rule (Wav2Pix's evaluation) and the identity probes fitted on real faces."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from datamodules.synthetic.faces import render_face_crop
from datamodules.synthetic.speakers import make_speakers
from lightning_modules.common.metrics.face_checks import face_found
from lightning_modules.common.metrics.identity_probe import build_probe


def _unit(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def test_a_real_tight_crop_counts_and_noise_or_grey_does_not():
    crop = np.asarray(Image.fromarray(data.astronaut()[60:190, 150:290]).resize((64, 64)))
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    grey = np.full((64, 64, 3), 128, np.uint8)
    assert face_found(_unit([crop, noise, grey])).tolist() == [True, False, False]


def _speaker_faces(per_speaker: int, size: int = 48):
    rng = np.random.default_rng(0)
    faces, labels = [], []
    for label, speaker in enumerate(make_speakers(3, seed=0)):
        faces += [render_face_crop(speaker, rng.uniform(0, 0.5), size, rng) for _ in range(per_speaker)]
        labels += [label] * per_speaker
    return _unit(faces), torch.tensor(labels)


def test_cnn_probe_learns_identities_from_real_faces():
    faces, labels = _speaker_faces(8)
    train, test = torch.arange(len(labels)) % 4 != 0, torch.arange(len(labels)) % 4 == 0
    probe = build_probe("cnn").fit(faces[train], labels[train])
    assert (probe.predict(faces[test]) == labels[test]).float().mean() >= 0.8


def test_dlib_probe_recognises_its_own_training_faces():
    faces, labels = _speaker_faces(2, size=96)
    probe = build_probe("dlib").fit(faces, labels)
    assert probe.predict(faces).shape == labels.shape


def test_unknown_probe_is_named():
    with pytest.raises(ValueError, match="vgg"):
        build_probe("vgg")
