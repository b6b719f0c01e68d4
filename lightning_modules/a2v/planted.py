"""Planted latents, a diagnostic for the learning proof (`tests/learning/test_a2v.py`): GAN inversion is
skipped and every frame's W+ residual is set to its measured mouth opening times one fixed direction.

On the demo data the generator is a random stand-in, so inverting frames into it gives codes that say
nothing about the mouth. Planting instead gives targets that are known to follow the speech (the
synthetic face opens its mouth with the loudness of its vowels), so the VAE and Embed2Lat can be shown to
learn them: Embed2Lat's held-out MSE must fall well below the train-mean baseline, and its predictions,
projected on the planted direction, must follow the speech energy.

Per clip, the opening o_t is the darkness of the mouth region of the crop (the open mouth shows its
cavity; `common.metrics.speech_dependence.region_opening` in the aligned crop's default mouth box), centred on
the clip's mean. Every selected row of frame t is `w0[row] + gain · (o_t − mean_t o) · u`, with w0 the
generator's average code and u a seeded unit vector of W (the same for every row), so
Δw_t = gain · (o_t − mean_t o) · u on each row and `projection(Δw_t) = gain · (o_t − mean_t o)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..common.metrics.speech_dependence import mouth_box, region_opening


@dataclass(frozen=True)
class PlantedMouthConfig:
    """Args:
    enabled: plant the residuals instead of inverting the frames (diagnostic only: the codes then
        render the stand-in's average picture plus a moving direction, not the frames).
    gain: W units per unit of mouth-region darkness (the darkness swings by a few hundredths).
    seed: draws the direction u.
    """

    enabled: bool = False
    gain: float = 10.0
    seed: int = 0

    def identity(self) -> dict:
        """What planted latents depend on (part of the latent cache's key)."""
        return {"gain": self.gain, "seed": self.seed}


def planted_direction(seed: int, dim: int = 512) -> torch.Tensor:
    """The unit vector u `(dim,)` that carries the mouth opening in every selected row."""
    direction = torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (direction / direction.norm()).float()


def measured_opening(frames: np.ndarray) -> np.ndarray:
    """`(T, S, S, 3)` uint8 face crops → the mouth opening per frame `(T,)`, centred on the clip's mean."""
    opening = region_opening(frames, mouth_box([], frames.shape[1:3]))
    return (opening - opening.mean()).astype(np.float32)


def planted_rows(
    opening: np.ndarray, w0: torch.Tensor, rows: list[int], config: PlantedMouthConfig
) -> torch.Tensor:
    """The selected rows of every frame's code `(T, len(rows), 512)` for openings `(T,)` and the full code
    w0 `(16, 512)` they are planted on."""
    direction = planted_direction(config.seed, w0.shape[-1])
    residual = config.gain * torch.from_numpy(opening)[:, None, None] * direction
    return w0[rows][None] + residual


def projection(residual: torch.Tensor, seed: int, rows: int) -> torch.Tensor:
    """Residuals `(..., rows·512)` → their component along the planted direction, averaged over the rows
    `(...)`."""
    direction = planted_direction(seed, residual.shape[-1] // rows).to(residual)
    return (residual.unflatten(-1, (rows, -1)) @ direction).mean(-1)
