"""Known answer: our FID on the TF-Inception network equals pytorch-fid's own computation.

The released TF-Inception file cannot be downloaded here, so both implementations load the same randomly
initialised weights of that architecture (its batch-norm statistics calibrated on noise, so the 2048 pool
features are of order 100 rather than 1e-8). pytorch-fid finds the file where it looks before downloading
(`$TORCH_HOME/hub/checkpoints/` under its released name) and reads the two folders of PNGs itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.models.inception import Inception3

from lightning_modules.common.metrics.distribution import (
    TF_INCEPTION,
    FeatureDistance,
    InceptionPool,
    load_inception,
    tf_network,
)

pytest.importorskip("pytorch_fid")
IMAGES_PER_FOLDER = 24


def calibrated_random_tf_inception(folder) -> torch.nn.Module:
    """Random weights whose batch-norm statistics are those of `folder`'s images, so every layer's activations
    are of order 1 on this data as they are for the trained network on faces."""
    torch.manual_seed(0)
    network = tf_network()
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: the statistics of exactly this batch
            module.reset_running_stats()
    pixels = torch.from_numpy(read_folder(folder)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        network.train()(TF_INCEPTION.normalise(F.interpolate(pixels, size=(299, 299), mode="bilinear")))
    return network.eval()


def read_folder(folder) -> np.ndarray:
    return np.stack([np.array(Image.open(path)) for path in sorted(folder.glob("*.png"))])


def write_folder(folder, brightness: int, rng: np.random.Generator):
    """Blocky colour noise images, 64 px, as PNG (lossless: both sides read the same pixels)."""
    folder.mkdir()
    for index in range(IMAGES_PER_FOLDER):
        blocks = np.kron(rng.normal(size=(8, 8, 3)), np.ones((8, 8, 1))) * 40 + 128 + brightness
        Image.fromarray(np.clip(blocks, 0, 255).astype(np.uint8)).save(folder / f"{index:03d}.png")


def our_fid(extractor, real_folder, generated_folder) -> float:
    distance = FeatureDistance(extractor)
    for folder, real in ((real_folder, True), (generated_folder, False)):
        distance.update(torch.from_numpy(read_folder(folder)).permute(0, 3, 1, 2), real=real)
    values, missing = distance.compute()
    assert not missing
    return values["fid"]


def test_fid_on_tf_inception_agrees_with_pytorch_fid(tmp_path, monkeypatch):
    from pytorch_fid.fid_score import calculate_fid_given_paths

    rng = np.random.default_rng(0)
    real_folder, generated_folder = tmp_path / "real", tmp_path / "generated"
    write_folder(real_folder, 0, rng)
    write_folder(generated_folder, 25, rng)
    network = calibrated_random_tf_inception(real_folder)
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(network.state_dict(), hub / TF_INCEPTION.released_file)
    torch.save(network.state_dict(), tmp_path / "random_tf_inception.pth")  # no digest in this name to check
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    reference = calculate_fid_given_paths(
        [str(real_folder), str(generated_folder)],
        batch_size=IMAGES_PER_FOLDER,
        device="cpu",
        dims=2048,
        num_workers=0,
    )
    ours = our_fid(
        load_inception(tmp_path / "random_tf_inception.pth", TF_INCEPTION), real_folder, generated_folder
    )
    assert reference > 1.0, "the folders must differ for the comparison to mean anything"
    assert ours == pytest.approx(reference, rel=1e-4)

    # The TF graph's pooling and [-1, 1] input are what make the agreement: the same weights in torchvision's
    # Inception blocks give another number.
    torchvision_blocks = Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    torchvision_blocks.load_state_dict(network.state_dict())
    other = our_fid(InceptionPool(torchvision_blocks, TF_INCEPTION.normalise), real_folder, generated_folder)
    print(f"FID: pytorch-fid {reference:.6g}, ours {ours:.6g}, torchvision blocks {other:.6g}")
    assert abs(other - reference) > 1e-3 * reference
