"""FaceNet wrapper: loading user weights with clear errors, SF2F preprocessing, the perceptual loss."""

import pytest
import torch

from lightning_modules.common.errors import WeightsError
from lightning_modules.common.pretrained.facenet import FaceNetFeatures, load_facenet, vgg_box
from lightning_modules.sf2f.losses import FaceNetPerceptualLoss


@pytest.fixture(scope="module")
def features():
    torch.manual_seed(0)
    return FaceNetFeatures(load_facenet(None, allow_random=True))


def test_vgg_box_sizes():
    for size, (height, width) in ((64, (47, 34)), (128, (94, 68))):
        rows, cols = vgg_box(size)
        assert (rows.stop - rows.start, cols.stop - cols.start) == (height, width)
    assert vgg_box(64) == (slice(12, 59), slice(15, 49))


def test_feature_shapes(features):
    outputs = features(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outputs] == [(2, 256, 15, 15), (2, 896, 7, 7), (2, 1792, 3, 3), (2, 512)]
    assert torch.allclose(outputs[-1].norm(dim=-1), torch.ones(2), atol=1e-5)


def test_perceptual_loss_zero_for_identical_and_differentiable(features):
    loss = FaceNetPerceptualLoss(features)
    real = torch.randn(2, 3, 64, 64)
    assert loss(real, real) == 0
    fake = torch.randn(2, 3, 64, 64, requires_grad=True)
    value = loss(fake, real)
    value.backward()
    assert value > 0 and fake.grad.abs().sum() > 0


def test_missing_weights_explain_what_to_do(tmp_path):
    with pytest.raises(WeightsError, match="facenet_weights"):
        load_facenet(None)
    with pytest.raises(WeightsError, match="missing.pt: FaceNet weights file not found"):
        load_facenet(str(tmp_path / "missing.pt"))


def test_wrong_files_are_refused_with_their_name(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pt: not a readable"):
        load_facenet(str(tmp_path / "junk.pt"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="other.pt does not fit FaceNet"):
        load_facenet(str(tmp_path / "other.pt"))


def test_saved_weights_round_trip(tmp_path):
    from facenet_pytorch import InceptionResnetV1

    source = InceptionResnetV1(pretrained=None, classify=False)
    state = {**source.state_dict(), "logits.weight": torch.zeros(8631, 512), "logits.bias": torch.zeros(8631)}
    torch.save(state, tmp_path / "vggface2.pt")
    loaded = load_facenet(str(tmp_path / "vggface2.pt"))
    assert torch.equal(loaded.last_linear.weight, source.last_linear.weight)
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
