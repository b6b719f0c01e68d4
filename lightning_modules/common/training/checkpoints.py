"""Initialising one training stage from another stage's checkpoint (SF2F's fuser, E2E-NR's adversarial
stage, TCSAN's pretrained AU networks): the chosen networks' weights are copied, everything else starts
fresh."""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn

from datamodules.errors import one_line

from ..errors import CheckpointError

# How `torch.load(weights_only=True)` names what it refused to unpickle: a function or class that unpickling
# would import and call. Its message goes on to advise loading with weights_only=False, which we never give.
UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
LOADER_DETAIL = "WeightsUnpickler error:"  # what follows is the unpickler's reason, without PyTorch's advice


def load_checkpoint_file(path, missing: str, unreadable: str):
    """The contents of a checkpoint file, loaded with `weights_only=True` (never executed as a pickle).

    Raises:
        CheckpointError: naming `path`, with `missing` when there is no such file and `unreadable` (after the
            loader's reason) when it is truncated, garbage or a pickle that wants to run code.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: {missing}") from None
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the file is no checkpoint
        unsafe = UNSAFE_GLOBAL.search(str(error))
        if unsafe:
            raise CheckpointError(
                f"{path}: not loaded, because loading it could run code: besides tensors and plain "
                f"values it holds a pickled {unsafe.group(1)}. Load only files you trust, and ask whoever "
                "made it for one with tensors and plain values only (as make train and make export write). "
                f"{unreadable}"
            ) from None
        raise CheckpointError(
            f"{path}: not a checkpoint that can be loaded safely ({loader_reason(error)}). {unreadable}"
        ) from None


def loader_reason(error: Exception) -> str:
    """Why the loader refused a file, in its first sentence or `WeightsUnpickler` detail, on one line."""
    message = str(error)
    _, found, detail = message.partition(LOADER_DETAIL)
    reason = one_line((detail if found else message).strip().split("\n\n")[0])
    return reason[:200] or type(error).__name__


def _checkpoint_state(path: str) -> dict[str, torch.Tensor]:
    """The `state_dict` of a Lightning checkpoint (or a bare state dict)."""
    fix = "Pass the earlier stage's best or last .ckpt."
    checkpoint = load_checkpoint_file(path, f"checkpoint not found. {fix}", fix)
    return checkpoint.get("state_dict", checkpoint)


def check_checkpoint_fits(model: nn.Module, checkpoint: dict) -> None:
    """Raise `CheckpointError` unless the Lightning `checkpoint`'s weights have exactly `model`'s names and
    shapes; the message lists the differing parameters and hyperparameters."""
    state, own = checkpoint.get("state_dict", {}), model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    reshaped = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(state) & set(own))
        if state[k].shape != own[k].shape
    ]
    if not (missing or unexpected or reshaped):
        return
    saved, current = checkpoint.get("hyper_parameters", {}), dict(getattr(model, "hparams", {}))
    differences = [
        f"{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now"
        for k in sorted(set(saved) | set(current))
        if saved.get(k) != current.get(k) and not k.endswith("_from")
    ]
    raise CheckpointError(
        f"the checkpoint does not fit {type(model).__name__} as configured: {len(missing)} missing "
        f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(reshaped)} of another shape "
        f"{reshaped[:3]}. Configuration differences: {differences[:6] or 'none recorded'}. Resume or "
        "evaluate it with the experiment and settings that wrote it, or start a new run."
    )


def _copy(
    target: nn.Module, wanted: dict[str, torch.Tensor], source: dict[str, str], path: str, must_match: str
) -> None:
    """Copy `source[name]` of the checkpoint into every `wanted` parameter/buffer `name` of `target`."""
    state = _checkpoint_state(path)
    mismatched = [
        f"{source[k]}: {tuple(state[source[k]].shape)} vs {tuple(v.shape)}"
        for k, v in wanted.items()
        if source[k] in state and state[source[k]].shape != v.shape
    ]
    missing = [source[k] for k in wanted if source[k] not in state]
    if mismatched or missing:
        raise CheckpointError(
            f"{path} does not fit this configuration ({must_match} must match the earlier "
            f"stage). Shape mismatches: {mismatched[:5]}; missing: {missing[:5]}."
        )
    target.load_state_dict({k: state[source[k]] for k in wanted}, strict=False)


def load_stage_weights(model: nn.Module, path: str, wanted: Callable[[str], bool], must_match: str) -> None:
    """Copy into `model` the checkpoint's weights whose names satisfy `wanted` (same names in both).

    Raises:
        CheckpointError: naming the file, the first mismatched and missing names, and `must_match`.
    """
    own = {name: value for name, value in model.state_dict().items() if wanted(name)}
    _copy(model, own, {name: name for name in own}, path, must_match)


def load_submodule(module: nn.Module, path: str, prefix: str, must_match: str) -> None:
    """Fill every weight of `module` from the checkpoint entries under `prefix` (e.g. "classifier.").

    Entries under `prefix` that `module` lacks (a dropped head) are ignored; a weight of `module` with no
    entry raises `CheckpointError`.
    """
    own = module.state_dict()
    _copy(module, own, {name: prefix + name for name in own}, path, must_match)
