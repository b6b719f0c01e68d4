"""Reading user-supplied pretrained weights: never executed as pickles, checked key by key and shape by shape
against the network they are meant for, with an error that names the file and says how to get the right
one."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsError

# torchvision's released files end in "-<first hex digits of the file's SHA-256>.pth" (vgg16-397923af.pth).
RELEASE_DIGEST = re.compile(r"-([0-9a-f]{8,64})\.pth?$")


def check_release_digest(path: Path, name: str, how_to_get: str) -> None:
    """For a file named as torchvision releases it, a `WeightsError` unless its SHA-256 starts with the
    digits in its name (a damaged download or another file under the released name)."""
    match = RELEASE_DIGEST.search(path.name)
    if match is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(match.group(1)):
        raise WeightsError(
            f"{path}: its SHA-256 starts {digest.hexdigest()[: len(match.group(1))]}, but the released "
            f"{name} file's name says {match.group(1)}: the download is damaged or it is another file; "
            f"{how_to_get}."
        )


def load_tensor_file(path: Path, how_to_get: str):
    """What `torch.save` wrote to `path`, loaded with `weights_only=True` (never executed as a pickle).

    Raises:
        WeightsError: naming `path`, with `how_to_get`, when the file cannot be read that way.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the file is not a state dict
        raise WeightsError(
            f"{path}: not a readable PyTorch state dict ({type(error).__name__}); {how_to_get}."
        ) from None


def read_state_dict(
    path: Path, network: nn.Module, name: str, how_to_get: str, keep: Callable[[str], bool] = lambda key: True
) -> dict[str, torch.Tensor]:
    """The state dict at `path` (entries for which `keep` is False dropped), checked against `network`.

    Raises:
        WeightsError: the file is missing, not a `torch.save`d state dict, or its keys or shapes differ
            from `network`'s; `name` and `how_to_get` go into the message.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: {name} weights file not found; {how_to_get}.")
    check_release_digest(path, name, how_to_get)
    state = load_tensor_file(path, how_to_get)
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: holds a {type(state).__name__}, not a state dict; {how_to_get}.")
    return check_state_dict({k: v for k, v in state.items() if keep(k)}, network, str(path), name, how_to_get)


def check_state_dict(
    state: dict[str, torch.Tensor], network: nn.Module, source: str, name: str, how_to_get: str
) -> dict[str, torch.Tensor]:
    """`state` when its keys and shapes are exactly `network`'s; else `WeightsError` naming `source`."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = [k for k in set(state) & set(expected) if state[k].shape != expected[k].shape]
    if missing or unexpected or reshaped:
        raise WeightsError(
            f"{source} does not fit {name}: missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shapes "
            f"{reshaped[:3]} ({len(missing)}/{len(unexpected)}/{len(reshaped)} in all); {how_to_get}."
        )
    return state
