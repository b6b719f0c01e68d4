"""VGG-19 perceptual loss: frozen, zero on identical images, weights only from a checked file."""

import pytest
import torch

from lightning_modules.common.errors import WeightsError
from lightning_modules.common.pretrained.perceptual import VGGPerceptual


def test_random_vgg_only_when_asked_and_frozen():
    with pytest.raises(WeightsError, match="vgg_weights=PATH"):
        VGGPerceptual(None)
    loss = VGGPerceptual(None, layers=(1, 6), allow_random=True)
    assert not any(p.requires_grad for p in loss.parameters())
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loss(images, images) == 0
    generated = images.clone().requires_grad_(True)
    loss(generated, torch.rand(2, 3, 32, 32)).backward()
    assert generated.grad.abs().sum() > 0


def test_weights_file_is_checked_key_by_key(tmp_path):
    from torchvision.models import vgg19

    with pytest.raises(WeightsError, match="missing.pth: VGG-19 weights file not found"):
        VGGPerceptual(str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(WeightsError, match="wrong.pth does not fit VGG-19"):
        VGGPerceptual(str(wrong))
    pickle = tmp_path / "pickle.pth"
    torch.save(torch.nn.Linear(2, 2), pickle)  # a pickled module is refused, never executed
    with pytest.raises(WeightsError, match="not a readable PyTorch state dict"):
        VGGPerceptual(str(pickle))
    good = tmp_path / "vgg19.pth"
    reference = vgg19(weights=None)
    torch.save(reference.state_dict(), good)
    loaded = VGGPerceptual(str(good), layers=(1,))
    assert torch.equal(loaded.features[0].weight, reference.features[0].weight)


def test_a_file_under_a_released_name_must_match_the_digest_in_its_name(tmp_path):
    import hashlib

    from torchvision.models import vgg19

    damaged = tmp_path / "vgg19-dcbb9e9d.pth"  # torchvision's released name, other bytes
    torch.save(vgg19(weights=None).state_dict(), damaged)
    with pytest.raises(
        WeightsError, match="vgg19-dcbb9e9d.pth: its SHA-256 starts .* the download is damaged"
    ):
        VGGPerceptual(str(damaged))
    digest = hashlib.sha256(damaged.read_bytes()).hexdigest()[:8]
    matching = damaged.rename(tmp_path / f"vgg19-{digest}.pth")  # a name whose digits fit its bytes loads
    assert VGGPerceptual(str(matching), layers=(1,)).features[0].weight.shape[0] == 64
