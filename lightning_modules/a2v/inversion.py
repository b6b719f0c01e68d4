"""GAN inversion of real frames into the frozen generator's W+ (the paper's Eq. 1).

L_inv(w) = mean_px (G(w) − x)² + 10 · LPIPS(G(w), x), by plain gradient descent on w (the paper's
"adversarial" inversion has no discriminator). A clip's first frame starts from a random code (or w_avg)
and takes 1000 Adam steps at lr 0.02, 0.01 from halfway; every later frame starts from the previous
frame's result and takes 5 steps at lr 0.01 with a fresh Adam. Many clips are inverted together, frame k
of each at once: losses are summed over clips, so every clip's gradient is its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ..common.pretrained.lpips_distance import build_lpips
from .generator import to_resolution

MIN_LPIPS_SIDE = 32  # AlexNet's five poolings leave nothing of a smaller image


@dataclass(frozen=True)
class InversionConfig:
    """Args:
    first_steps / first_lr / first_lr_late: the first frame's schedule (lr drops at first_steps / 2).
    later_steps / later_lr: every later frame's schedule, from the previous frame's code.
    lpips_weight: λ of the LPIPS term.
    init: "random" (the paper: G.mapping of z ~ N(0, I)) or "w_avg".
    lpips_net / lpips_backbone / allow_random_lpips: see `common.pretrained.lpips_distance.build_lpips`.
    batch_clips: clips inverted together (also the cache shard size).
    device: "auto" (CUDA when available), "cpu" or "cuda".
    seed: seeds the random first codes.
    """

    first_steps: int = 1000
    first_lr: float = 0.02
    first_lr_late: float = 0.01
    later_steps: int = 5
    later_lr: float = 0.01
    lpips_weight: float = 10.0
    init: str = "random"
    lpips_net: str = "vgg"
    lpips_backbone: str | None = None
    allow_random_lpips: bool = False
    batch_clips: int = 8
    device: str = "auto"
    seed: int = 0

    def __post_init__(self):
        if self.init not in ("random", "w_avg"):
            raise ValueError(f"inversion init must be 'random' or 'w_avg', got {self.init!r}")

    def first_frame_lr(self, step: int) -> float:
        return self.first_lr if step < self.first_steps // 2 else self.first_lr_late

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


@dataclass
class InvertedClip:
    """codes `(T, 16, 512)`; loss `(T,)` final L_inv; psnr `(T,)` dB of G(code) against the frame."""

    codes: torch.Tensor
    loss: torch.Tensor
    psnr: torch.Tensor


class Inverter:
    """Fits W+ codes to frames through a frozen generator; `perceptual` maps two `(B, 3, R, R)` batches
    in [-1, 1] to `(B, 1, 1, 1)` distances (LPIPS)."""

    def __init__(self, generator: nn.Module, perceptual: Callable, config: InversionConfig):
        self.generator, self.perceptual, self.config = generator, perceptual, config

    @classmethod
    def build(cls, generator: nn.Module, config: InversionConfig) -> Inverter:
        if generator.img_resolution < MIN_LPIPS_SIDE:
            raise ValueError(
                f"the generator renders {generator.img_resolution}-px frames; LPIPS needs at least "
                f"{MIN_LPIPS_SIDE} px (raise generator.tiny_resolution)"
            )
        device = config.torch_device()
        perceptual = build_lpips(config.lpips_net, config.lpips_backbone, config.allow_random_lpips).to(
            device
        )
        return cls(generator.to(device), perceptual, config)

    @property
    def resolution(self) -> int:
        return self.generator.img_resolution

    def losses(self, codes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample L_inv `(B,)` of codes `(B, 16, 512)` against targets `(B, 3, R, R)`."""
        images = self.generator.synthesis(codes)
        mse = (images - targets).square().flatten(1).mean(1)
        return mse + self.config.lpips_weight * self.perceptual(images, targets).flatten()

    def optimise(
        self, start: torch.Tensor, targets: torch.Tensor, steps: int, lr_at: Callable[[int], float]
    ) -> torch.Tensor:
        """`steps` Adam steps (a fresh optimiser) from `start`; returns the final codes, detached."""
        codes = start.detach().clone().requires_grad_(True)
        optimiser = torch.optim.Adam([codes], lr=lr_at(0), betas=(0.9, 0.999))
        with torch.enable_grad():
            for step in range(steps):
                for group in optimiser.param_groups:
                    group["lr"] = lr_at(step)
                optimiser.zero_grad(set_to_none=True)
                self.losses(codes, targets).sum().backward()
                optimiser.step()
        return codes.detach()

    def initial_codes(self, count: int, generator: torch.Generator) -> torch.Tensor:
        device = self.generator.w_avg.device
        if self.config.init == "w_avg":
            return self.generator.w_avg.expand(count, self.generator.num_ws, -1).clone()
        z = torch.randn(count, self.generator.z_dim, generator=generator).to(device)
        with torch.no_grad():
            return self.generator.mapping(z, None, truncation_psi=1.0).clone()

    def first_frames(self, targets: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """Codes `(B, 16, 512)` for first frames `(B, 3, R, R)`: the long schedule from an initial code."""
        start = self.initial_codes(len(targets), torch.Generator().manual_seed(seed))
        return self.optimise(start, targets, self.config.first_steps, self.config.first_frame_lr)

    def next_frames(self, previous: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Codes of the following frames, refined from the previous frames' codes with the short schedule."""
        return self.optimise(previous, targets, self.config.later_steps, lambda step: self.config.later_lr)

    def scores(self, codes: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(final L_inv, PSNR in dB on [-1, 1] images) per sample, without grad."""
        with torch.no_grad():
            images = self.generator.synthesis(codes).clamp(-1, 1)
            mse = (images - targets).square().flatten(1).mean(1)
            loss = mse + self.config.lpips_weight * self.perceptual(images, targets).flatten()
        return loss, 10 * torch.log10(4.0 / mse.clamp_min(1e-10))

    def targets(self, frames: torch.Tensor) -> torch.Tensor:
        """`(T, 3, S, S)` in [-1, 1] → the generator's resolution (area resampling) on its device."""
        return to_resolution(frames.to(self.generator.w_avg.device, torch.float32), self.resolution)

    def invert_clips(
        self, clips: list[torch.Tensor], seed: int = 0, progress: tqdm | None = None
    ) -> list[InvertedClip]:
        """Invert whole clips `(T_i, 3, S, S)` in [-1, 1] together, frame by frame."""
        targets = [self.targets(frames) for frames in clips]
        longest = max(len(t) for t in targets)
        codes: list[list[torch.Tensor]] = [[] for _ in clips]
        scores: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in clips]
        for k in range(longest):
            active = [i for i, t in enumerate(targets) if len(t) > k]
            frame = torch.stack([targets[i][k] for i in active])
            if k == 0:
                current = self.first_frames(frame, seed)
            else:
                current = self.next_frames(torch.stack([codes[i][-1] for i in active]), frame)
            loss, psnr = self.scores(current, frame)
            for j, i in enumerate(active):
                codes[i].append(current[j])
                scores[i].append((loss[j], psnr[j]))
            if progress is not None:
                progress.update(len(active))
        return [
            InvertedClip(
                torch.stack(c).cpu(),
                torch.stack([s[0] for s in sc]).cpu(),
                torch.stack([s[1] for s in sc]).cpu(),
            )
            for c, sc in zip(codes, scores)
        ]
