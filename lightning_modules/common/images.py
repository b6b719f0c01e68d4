"""Image-space helpers: undoing the data normalisation, sample grids saved and logged per step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision
from lightning.pytorch.loggers import WandbLogger

from datamodules.pipeline.files import atomic_path
from datamodules.pipeline.images import IMAGENET_MEAN, IMAGENET_STD


def imagenet_to_unit(images: torch.Tensor) -> torch.Tensor:
    """`(B, 3, H, W)` ImageNet-normalised → `(B, 3, H, W)` in [0, 1] (clamped)."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0.0, 1.0)


def unit_to_imagenet(images: torch.Tensor) -> torch.Tensor:
    """`(B, 3, H, W)` in [0, 1] → ImageNet-normalised (the inverse of `imagenet_to_unit`)."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def signed_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """`(..., 3, H, W)` in [-1, 1] (clamped) → `(..., H, W, 3)` uint8 on the CPU, for metrics and video
    files."""
    pixels = ((frames.detach().clamp(-1, 1) + 1) * 127.5).round().byte()
    return pixels.movedim(-3, -1).cpu().numpy()


def log_sample_grid(module, key: str, rows: list[torch.Tensor], caption: str) -> Path | None:
    """Save one grid (one row per tensor in `rows`, each `(B, 3, H, W)` in [0, 1]) and log it to W&B.

    The PNG goes to `<run dir>/samples/<key>-step<global_step>.png` so samples are browsable without W&B.
    Rows of different sizes are resized to the largest.
    """
    trainer = module.trainer
    if trainer is None or trainer.sanity_checking or not trainer.is_global_zero:
        return None
    side = max(row.shape[-1] for row in rows)
    resized = [
        torch.nn.functional.interpolate(r.float().cpu(), size=(side, side), mode="nearest") for r in rows
    ]
    grid = torchvision.utils.make_grid(torch.cat(resized), nrow=len(rows[0]), padding=2, pad_value=1.0)
    path = (
        Path(trainer.default_root_dir)
        / "samples"
        / f"{key.replace('/', '_')}-step{trainer.global_step:07d}.png"
    )
    with atomic_path(path) as partial:
        torchvision.utils.save_image(grid, partial, format="png")
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[grid], caption=[caption], step=trainer.global_step)
    return path
