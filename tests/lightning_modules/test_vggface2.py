"""The VGGFace2 ResNet-50 behind SF2F's VGGFace Score: the Caffe layout, a weights pickle read without running
code, and the score's formula on probabilities whose answer is known."""

import pickle

import numpy as np
import pytest
import torch

from lightning_modules.common.errors import WeightsError
from lightning_modules.common.pretrained.vggface2 import (
    caffe_resnet50,
    identity_probabilities,
    load_vggface2_classifier,
)
from lightning_modules.sf2f.evaluation import vgg_face_score


def write_weights(network, path, protocol=2):
    """The network's parameters as the released file holds them: numpy arrays by name, no step counters."""
    arrays = {k: v.numpy() for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    path.write_bytes(pickle.dumps(arrays, protocol=protocol))


def test_the_caffe_layout_downsamples_in_the_first_1x1_and_keeps_resnet50s_shapes():
    network = caffe_resnet50(num_classes=7)
    assert network.layer2[0].conv1.stride == (2, 2) and network.layer2[0].conv2.stride == (1, 1)
    assert network.maxpool.ceil_mode
    with torch.no_grad():
        features = network.maxpool(network.relu(network.bn1(network.conv1(torch.zeros(1, 3, 224, 224)))))
        assert features.shape == (1, 64, 56, 56)
        assert network.eval()(torch.zeros(2, 3, 224, 224)).shape == (2, 7)


@pytest.mark.parametrize("protocol", [2, 5])
def test_a_weights_pickle_loads_into_the_same_network(tmp_path, protocol):
    torch.manual_seed(0)
    source = caffe_resnet50(num_classes=7).eval()
    write_weights(source, tmp_path / "resnet50_ft_weight.pkl", protocol)
    loaded = load_vggface2_classifier(tmp_path / "resnet50_ft_weight.pkl")
    faces = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    probabilities = identity_probabilities(loaded, faces)
    assert probabilities.shape == (2, 7) and torch.allclose(probabilities.sum(1), torch.ones(2))
    with torch.no_grad():
        mean = torch.tensor([131.0912, 103.8827, 91.4953]).view(1, 3, 1, 1)
        resized = torch.nn.functional.interpolate(faces.float() - mean, size=(224, 224), mode="bilinear")
        assert torch.allclose(probabilities, source(resized).softmax(1), atol=1e-6)


def test_a_pickle_that_would_run_code_or_another_file_is_refused_by_name(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (print, ("ran",))

    bad = tmp_path / "resnet50_ft_weight.pkl"
    bad.write_bytes(pickle.dumps({"fc.weight": RunsCode()}))
    with pytest.raises(
        WeightsError, match=r"resnet50_ft_weight.pkl: not a pickle of numpy arrays .*builtins.print"
    ):
        load_vggface2_classifier(bad)
    bad.write_bytes(pickle.dumps({"fc.weight": np.zeros((7, 2048), np.float32)}))
    with pytest.raises(WeightsError, match="does not fit VGGFace2 ResNet-50: missing"):
        load_vggface2_classifier(bad)
    with pytest.raises(WeightsError, match="not found"):
        load_vggface2_classifier(tmp_path / "missing.pkl")


def test_the_vggface_score_counts_the_identities_the_faces_are_sure_of():
    rng = np.random.default_rng(0)
    sure = np.eye(20)  # each face certain of a different identity: the score is the faces per split
    assert vgg_face_score(sure, rng, splits=5) == pytest.approx(4.0)
    same = np.tile(np.eye(20)[:1], (20, 1))  # every face the same identity: 1
    assert vgg_face_score(same, rng, splits=5) == pytest.approx(1.0)
    unsure = np.full((20, 20), 1 / 20)  # no face says anything: 1
    assert vgg_face_score(unsure, rng, splits=5) == pytest.approx(1.0)
