"""Initialising one training stage from another stage's checkpoint (SF2F's fuser, E2E-NR's adversarial
stage): the chosen networks' weights are copied, everything else starts fresh."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .errors import CheckpointError


def load_stage_weights(model: nn.Module, path: str, wanted: Callable[[str], bool], must_match: str) -> None:
    """Copy into `model` the checkpoint's weights whose names satisfy `wanted`.

    Loaded with `weights_only=True`: a checkpoint is never executed as a pickle. `must_match` names what
    has to agree between the stages, for the error raised when a wanted weight is missing or misshapen.

    Raises:
        CheckpointError: naming the file, the first mismatched and missing names, and `must_match`.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: init_from checkpoint not found. Pass the previous stage's best or "
                              "last .ckpt.") from None
    state = checkpoint.get("state_dict", checkpoint)
    own = {name: value for name, value in model.state_dict().items() if wanted(name)}
    mismatched = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                  if k in state and state[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    if mismatched or missing:
        raise CheckpointError(f"{path} does not fit this configuration ({must_match} must match the earlier "
                              f"stage). Shape mismatches: {mismatched[:5]}; missing: {missing[:5]}.")
    model.load_state_dict({k: state[k] for k in own}, strict=False)
