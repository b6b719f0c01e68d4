"""The VGGFace2 ResNet-50 identity classifier (8,631 identities), which SF2F's VGGFace Score (VFS) uses.

The weights are the VGGFace2 authors' Caffe "ft" model converted to a pickle of numpy arrays named as the
network's parameters (`resnet50_ft_weight.pkl`, as distributed with VGGFace2-pytorch). Caffe's ResNet-50
downsamples in the first 1×1 convolution of a stage (torchvision's in the 3×3) and max-pools with ceil mode,
so the network is torchvision's ResNet-50 with those two changes. The pickle is read by an unpickler that
builds numpy arrays and nothing else, so a file that would run code is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .weights import check_state_dict

VGGFACE2_FILE = "resnet50_ft_weight.pkl"
MEAN_RGB = (131.0912, 103.8827, 91.4953)  # subtracted in RGB order, as SF2F's evaluation code does
INPUT_SIDE = 224
HOW_TO_GET = (
    f"get {VGGFACE2_FILE} (the VGGFace2 authors' ResNet-50 'ft' model as a pickle of numpy arrays, "
    "distributed with VGGFace2-pytorch) and pass --option vfs_weights=PATH"
)


def caffe_resnet50(num_classes: int) -> nn.Module:
    """ResNet-50 laid out as the Caffe model: stride 2 in each downsampling stage's first 1×1 convolution,
    and a 3×3 max-pool with ceil mode after the stem. `(B, 3, 224, 224)` → `(B, num_classes)` logits."""
    from torchvision.models import resnet50

    network = resnet50(weights=None, num_classes=num_classes)
    network.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
    for stage in (network.layer2, network.layer3, network.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    return network


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays; any other global (a function a pickle could call) is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # how protocol-2 pickles store an array's bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it would load {module}.{name}, which a file of arrays never needs")


def read_array_pickle(path: Path) -> dict[str, np.ndarray]:
    """`{name: array}` from a pickle of numpy arrays (Python 2 pickles included), never running code.

    Raises:
        WeightsError: naming `path`, when it is missing, would run code or holds something else.
    """
    if not path.is_file():
        raise WeightsError(f"{path}: VGGFace2 ResNet-50 weights file not found; {HOW_TO_GET}.")
    try:
        with path.open("rb") as handle:
            arrays = _ArraysOnly(handle, encoding="latin1").load()
    except Exception as error:  # noqa: BLE001 - any unpickling failure means it is not the weights file
        raise WeightsError(f"{path}: not a pickle of numpy arrays ({error}); {HOW_TO_GET}.") from None
    if not isinstance(arrays, dict) or not all(isinstance(a, np.ndarray) for a in arrays.values()):
        raise WeightsError(f"{path}: holds no dict of numpy arrays; {HOW_TO_GET}.")
    return arrays


def load_vggface2_classifier(path: str | Path) -> nn.Module:
    """The classifier in eval mode with frozen parameters; its class count is the file's (8,631 released).

    Raises:
        WeightsError: the file is missing, unreadable, would run code or does not fit the network.
    """
    path = Path(path)
    arrays = read_array_pickle(path)
    if "fc.weight" not in arrays:
        raise WeightsError(f"{path}: has no fc.weight, so it is not a ResNet-50 classifier; {HOW_TO_GET}.")
    network = caffe_resnet50(num_classes=arrays["fc.weight"].shape[0])
    state = {name: torch.from_numpy(np.array(array)) for name, array in arrays.items()}
    # The Caffe conversion has no BatchNorm step counters; they are unused in eval mode.
    state |= {k: v for k, v in network.state_dict().items() if k.endswith("num_batches_tracked")}
    network.load_state_dict(check_state_dict(state, network, str(path), "VGGFace2 ResNet-50", HOW_TO_GET))
    return network.eval().requires_grad_(False)


@torch.no_grad()
def identity_probabilities(classifier: nn.Module, faces: torch.Tensor) -> torch.Tensor:
    """`(N, 3, H, W)` uint8 RGB faces, uncropped → `(N, classes)` softmax probabilities: the mean subtracted,
    then a bilinear resize to 224×224, as SF2F's evaluation code feeds the classifier."""
    device = next(classifier.parameters()).device
    mean = torch.tensor(MEAN_RGB, device=device).view(1, 3, 1, 1)
    centred = faces.to(device).float() - mean
    resized = F.interpolate(centred, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False)
    return classifier(resized).softmax(dim=1)
