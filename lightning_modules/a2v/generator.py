"""The frozen StyleGAN3 that renders every A2V frame, or a small random stand-in of the same interface.

Both satisfy `StyleGenerator`: `mapping(z) → (B, num_ws, w_dim)` and `synthesis(ws) → (B, 3, R, R)` in
about [-1, 1]. The real one is NVIDIA's `stylegan3-r-ffhqu-256x256.pkl` (16 × 512 W+ codes, 256 px); it is
a pickle of modules defined in NVlabs/stylegan3, so the user gives both the file and a clone of that
repository (its code is under a non-commercial licence and is not vendored here). Without them, and only
when `allow_random` is set (demo, tests), `TinyStyleGenerator` keeps num_ws = 16 and w_dim = 512 so the
row slice and the 1536-d VAE input are the real ones; its frames mean nothing, and the logs say so.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from ..common.errors import WeightsError

NUM_WS, W_DIM = 16, 512
STYLEGAN3_HOW_TO = (
    "download stylegan3-r-ffhqu-256x256.pkl from NVIDIA's StyleGAN3 release and clone "
    "https://github.com/NVlabs/stylegan3, then set generator.stylegan3_pkl and generator.stylegan3_repo"
)


class StyleGenerator(Protocol):
    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    w_avg: torch.Tensor

    def mapping(self, z: torch.Tensor, c=None, truncation_psi: float = 1.0) -> torch.Tensor: ...

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class GeneratorConfig:
    """Which generator renders frames.

    Args:
        stylegan3_pkl: NVIDIA's network pickle (`G_ema` is used, frozen).
        stylegan3_repo: a clone of NVlabs/stylegan3 (unpickling needs its `dnnlib`, `torch_utils`, `legacy`).
        allow_random: without the two paths, use `TinyStyleGenerator` (demo and tests only).
        tiny_resolution: the stand-in's output side (a power of two ≥ 8).
        tiny_channels: the stand-in's feature width.
        seed: the stand-in's weights are drawn from this seed, so every stage builds the same network.
    """

    stylegan3_pkl: str | None = None
    stylegan3_repo: str | None = None
    allow_random: bool = False
    tiny_resolution: int = 64
    tiny_channels: int = 32
    seed: int = 0

    def identity(self) -> str:
        """What cached latents depend on: the pickle's path and size, or the stand-in's settings."""
        if self.stylegan3_pkl:
            path = Path(self.stylegan3_pkl).expanduser()
            return f"stylegan3:{path.resolve()}:{path.stat().st_size if path.exists() else 'missing'}"
        return f"tiny:{self.tiny_resolution}:{self.tiny_channels}:{self.seed}"


class StyleBlock(nn.Module):
    """Instance-normalised features re-styled by one W+ row (AdaIN), then a 3×3 conv and LeakyReLU."""

    def __init__(self, channels: int, upsample: bool):
        super().__init__()
        self.upsample = upsample
        self.style = nn.Linear(W_DIM, 2 * channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        scale, shift = self.style(w)[:, :, None, None].chunk(2, dim=1)
        x = nn.functional.instance_norm(x) * (1 + scale) + shift
        return nn.functional.leaky_relu(self.conv(x), 0.2)


class TinyStyleGenerator(nn.Module):
    """A small random StyleGAN-shaped generator: 2-layer MLP mapping (512 → 512), a learned 4×4 constant
    styled by row 0, 14 style blocks driven by rows 1–14 (×2 upsampling spread over them up to
    `resolution`), and a ToRGB styled by row 15, tanh output. `(B, 16, 512)` → `(B, 3, R, R)`."""

    z_dim, w_dim, num_ws = W_DIM, W_DIM, NUM_WS

    def __init__(self, resolution: int = 64, channels: int = 32):
        super().__init__()
        doublings = resolution.bit_length() - 3
        if resolution < 8 or resolution != 4 << doublings or doublings > NUM_WS - 2:
            raise ValueError(
                f"tiny generator resolution must be a power of two in [8, 65536], got {resolution}"
            )
        self.img_resolution = resolution
        self.mapping_net = nn.Sequential(nn.Linear(W_DIM, W_DIM), nn.LeakyReLU(0.2), nn.Linear(W_DIM, W_DIM))
        self.constant = nn.Parameter(torch.randn(1, channels, 4, 4))
        self.input_style = nn.Linear(W_DIM, 2 * channels)
        upsampling = {round((k + 1) * (NUM_WS - 2) / (doublings + 1)) - 1 for k in range(doublings)}
        self.blocks = nn.ModuleList(StyleBlock(channels, i in upsampling) for i in range(NUM_WS - 2))
        self.to_rgb_style = nn.Linear(W_DIM, channels)
        self.to_rgb = nn.Conv2d(channels, 3, 1)
        with torch.no_grad():
            self.register_buffer("w_avg", self.mapping_net(torch.randn(4096, W_DIM)).mean(0))

    def mapping(self, z: torch.Tensor, c=None, truncation_psi: float = 1.0) -> torch.Tensor:
        """`(B, 512)` → `(B, 16, 512)`: one w broadcast to every row, pulled towards w_avg by truncation."""
        z = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        w = self.w_avg + truncation_psi * (self.mapping_net(z) - self.w_avg)
        return w[:, None].expand(-1, NUM_WS, -1)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        scale, shift = self.input_style(ws[:, 0])[:, :, None, None].chunk(2, dim=1)
        x = self.constant.expand(len(ws), -1, -1, -1) * (1 + scale) + shift
        for row, block in enumerate(self.blocks, start=1):
            x = block(x, ws[:, row])
        x = x * (1 + self.to_rgb_style(ws[:, NUM_WS - 1]))[:, :, None, None]
        return torch.tanh(self.to_rgb(x))


def build_generator(config: GeneratorConfig) -> nn.Module:
    """The frozen generator in eval mode: StyleGAN3 from the user's files, else (when allowed) the
    seeded stand-in, identical in every process that builds it."""
    if config.stylegan3_pkl or config.stylegan3_repo:
        generator = load_stylegan3(config.stylegan3_pkl, config.stylegan3_repo)
    elif config.allow_random:
        rank_zero_warn(
            "A2V: no StyleGAN3 given (generator.stylegan3_pkl): frames come from a small RANDOM "
            f"stand-in generator ({config.tiny_resolution} px). Shapes and training logic are the real "
            "ones; the pictures are not faces."
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            generator = TinyStyleGenerator(config.tiny_resolution, config.tiny_channels)
    else:
        raise WeightsError(
            f"A2V needs a StyleGAN3 generator: {STYLEGAN3_HOW_TO} (or allow_random: true for a "
            "random stand-in, demo only)."
        )
    return generator.eval().requires_grad_(False)


def load_stylegan3(pkl: str | None, repo: str | None) -> nn.Module:
    """`G_ema` of an official StyleGAN3 pickle, unpickled with the user's NVlabs/stylegan3 clone on the path.

    Unpickling runs code named in the file: load only NVIDIA's release or pickles you made yourself.
    """
    if not pkl or not Path(pkl).expanduser().is_file():
        raise WeightsError(f"{pkl}: StyleGAN3 network pickle not found; {STYLEGAN3_HOW_TO}.")
    repo_path = Path(repo or "").expanduser()
    missing = [name for name in ("legacy.py", "dnnlib", "torch_utils") if not (repo_path / name).exists()]
    if not repo or missing:
        raise WeightsError(
            f"{repo}: not a clone of NVlabs/stylegan3 (missing {missing or ['the folder']}); "
            f"{STYLEGAN3_HOW_TO}."
        )
    if str(repo_path) not in sys.path:
        sys.path.insert(0, str(repo_path))
    legacy = importlib.import_module("legacy")
    try:
        with open(Path(pkl).expanduser(), "rb") as handle:
            generator = legacy.load_network_pkl(handle)["G_ema"]
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a wrong or damaged file
        raise WeightsError(
            f"{pkl}: not a readable StyleGAN3 network pickle ({type(error).__name__}: {error}); "
            f"{STYLEGAN3_HOW_TO}."
        ) from None
    if (generator.num_ws, generator.w_dim) != (NUM_WS, W_DIM):
        raise WeightsError(
            f"{pkl}: the generator has {generator.num_ws} × {generator.w_dim} W+ codes; A2V's row "
            f"slice and VAE assume {NUM_WS} × {W_DIM} (stylegan3-r-ffhqu-256x256)."
        )
    return generator


def render(generator: nn.Module, ws: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """`(N, 16, 512)` codes → `(N, 3, R, R)` frames clamped to [-1, 1], `chunk` at a time, without grad."""
    with torch.no_grad():
        return torch.cat([generator.synthesis(part).clamp(-1, 1) for part in ws.split(chunk)])
