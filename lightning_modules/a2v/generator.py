"""The frozen StyleGAN3 that renders every A2V frame, or a small stand-in of the same interface.

All satisfy `StyleGenerator`: `mapping(z) → (B, num_ws, w_dim)` and `synthesis(ws) → (B, 3, R, R)` in
about [-1, 1]. The real one is NVIDIA's `stylegan3-r-ffhqu-256x256.pkl` (16 × 512 W+ codes, 256 px); it is
a pickle of modules defined in NVlabs/stylegan3, so the user gives both the file and a clone of that
repository (its code is under a non-commercial licence and is not vendored here). Without them, and only
when `allow_random` is set (demo, tests), `TinyStyleGenerator` keeps num_ws = 16 and w_dim = 512 so the
row slice and the 1536-d VAE input are the real ones; its frames mean nothing, and the logs say so.
`TrainedStyleGenerator` is the same synthesis network trained on the data's own face crops
(`lightning_modules/a2v/stand_in.py`, `make train EXP=a2v_face_generator`), loaded from the file named by
`trained_stand_in`: its frames are faces whose mouths open and close.
"""

from __future__ import annotations

import hashlib
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
MIN_TAPERED_CHANNELS = 8
STAND_IN_FORMAT = "a2v-trained-stand-in-1"
STAND_IN_HOW_TO = (
    "`make train EXP=a2v_face_generator` trains it (give it the same generator.trained_stand_in and data "
    "settings)"
)
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
        trained_stand_in: instead of StyleGAN3, the trained stand-in in this file (`TrainedStyleGenerator`,
            written by `make train EXP=a2v_face_generator`, which trains it here at `tiny_resolution` and
            `tiny_channels`; loading takes the sizes the file records).
        allow_random: without any of these files, use `TinyStyleGenerator` (demo and tests only).
        tiny_resolution: the stand-in's output side (a power of two ≥ 8).
        tiny_channels: the stand-in's feature width.
        seed: the stand-in's weights are drawn from this seed, so every stage builds the same network.
    """

    stylegan3_pkl: str | None = None
    stylegan3_repo: str | None = None
    trained_stand_in: str | None = None
    allow_random: bool = False
    tiny_resolution: int = 64
    tiny_channels: int = 32
    seed: int = 0

    def __post_init__(self):
        if self.trained_stand_in and (self.stylegan3_pkl or self.stylegan3_repo):
            raise ValueError(
                "give either StyleGAN3 (generator.stylegan3_pkl / stylegan3_repo) or "
                "generator.trained_stand_in, not both"
            )

    def identity(self) -> str:
        """What cached latents depend on: the pickle's path and size, the trained stand-in's path and
        content, or the random stand-in's settings."""
        if self.stylegan3_pkl:
            path = Path(self.stylegan3_pkl).expanduser()
            return f"stylegan3:{path.resolve()}:{path.stat().st_size if path.exists() else 'missing'}"
        if self.trained_stand_in:
            path = Path(self.trained_stand_in).expanduser()
            content = hashlib.sha1(path.read_bytes()).hexdigest()[:12] if path.is_file() else "missing"
            return f"trained:{path.resolve()}:{content}"
        return f"tiny:{self.tiny_resolution}:{self.tiny_channels}:{self.seed}"


class StyleBlock(nn.Module):
    """Instance-normalised features re-styled by one W+ row (AdaIN), then a 3×3 conv and LeakyReLU."""

    def __init__(self, channels: int, upsample: bool, out_channels: int | None = None):
        super().__init__()
        self.upsample = upsample
        self.style = nn.Linear(W_DIM, 2 * channels)
        self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        scale, shift = self.style(w)[:, :, None, None].chunk(2, dim=1)
        x = nn.functional.instance_norm(x) * (1 + scale) + shift
        return nn.functional.leaky_relu(self.conv(x), 0.2)


class StyleSynthesis(nn.Module):
    """The stand-ins' synthesis network: a learned 4×4 constant styled by row 0, 14 style blocks driven by
    rows 1–14 (×2 upsampling spread over them up to `resolution`), and a ToRGB styled by row 15, tanh
    output. `(B, 16, 512)` → `(B, 3, R, R)`.

    Every block is `channels` wide, or, with `taper`, halves its width at each doubling beyond 16 px (at
    least `MIN_TAPERED_CHANNELS`), as StyleGAN narrows its high-resolution layers: at 64 px this makes a
    training step about 4× cheaper than the full width, which a CPU needs."""

    def __init__(self, resolution: int, channels: int, taper: bool = False):
        super().__init__()
        doublings = resolution.bit_length() - 3
        if resolution < 8 or resolution != 4 << doublings or doublings > NUM_WS - 2:
            raise ValueError(
                f"tiny generator resolution must be a power of two in [8, 65536], got {resolution}"
            )
        upsampling = {round((k + 1) * (NUM_WS - 2) / (doublings + 1)) - 1 for k in range(doublings)}
        sides = [4 << sum(u <= i for u in upsampling) for i in range(NUM_WS - 2)]
        widths = [tapered_width(channels, side) if taper else channels for side in sides]
        self.constant = nn.Parameter(torch.randn(1, channels, 4, 4))
        self.input_style = nn.Linear(W_DIM, 2 * channels)
        self.blocks = nn.ModuleList(
            StyleBlock(width_in, i in upsampling, width_out)
            for i, (width_in, width_out) in enumerate(zip([channels, *widths], widths))
        )
        self.to_rgb_style = nn.Linear(W_DIM, widths[-1])
        self.to_rgb = nn.Conv2d(widths[-1], 3, 1)

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        scale, shift = self.input_style(ws[:, 0])[:, :, None, None].chunk(2, dim=1)
        x = self.constant.expand(len(ws), -1, -1, -1) * (1 + scale) + shift
        for row, block in enumerate(self.blocks, start=1):
            x = block(x, ws[:, row])
        x = x * (1 + self.to_rgb_style(ws[:, NUM_WS - 1]))[:, :, None, None]
        return torch.tanh(self.to_rgb(x))


def tapered_width(channels: int, side: int) -> int:
    """A tapered block's width at `side` px: `channels` up to 16 px, halved at each doubling beyond."""
    return max(channels * 16 // max(side, 16), MIN_TAPERED_CHANNELS)


class TinyStyleGenerator(nn.Module):
    """A small random StyleGAN-shaped generator: a 2-layer MLP mapping (512 → 512) and `StyleSynthesis`.
    `(B, 16, 512)` → `(B, 3, R, R)`."""

    z_dim, w_dim, num_ws = W_DIM, W_DIM, NUM_WS

    def __init__(self, resolution: int = 64, channels: int = 32):
        super().__init__()
        self.img_resolution = resolution
        # Built before the synthesis network, so the seeded weights are drawn in their original order.
        self.mapping_net = nn.Sequential(nn.Linear(W_DIM, W_DIM), nn.LeakyReLU(0.2), nn.Linear(W_DIM, W_DIM))
        self.synthesis_net = StyleSynthesis(resolution, channels)
        with torch.no_grad():
            self.register_buffer("w_avg", self.mapping_net(torch.randn(4096, W_DIM)).mean(0))

    def mapping(self, z: torch.Tensor, c=None, truncation_psi: float = 1.0) -> torch.Tensor:
        """`(B, 512)` → `(B, 16, 512)`: one w broadcast to every row, pulled towards w_avg by truncation."""
        z = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        w = self.w_avg + truncation_psi * (self.mapping_net(z) - self.w_avg)
        return w[:, None].expand(-1, NUM_WS, -1)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.synthesis_net(ws)


class TrainedStyleGenerator(nn.Module):
    """`StyleSynthesis` (tapered) trained on face crops, with a Gaussian mapping fitted to the codes it was
    trained with (`lightning_modules/a2v/stand_in.py`): mapping(z) = w_avg + ψ · w_scale z, one w for every
    row, so z ~ N(0, I) gives codes distributed like the training frames' and ψ truncates towards their
    mean."""

    z_dim, w_dim, num_ws = W_DIM, W_DIM, NUM_WS

    def __init__(self, resolution: int, channels: int):
        super().__init__()
        self.img_resolution, self.channels = resolution, channels
        self.synthesis_net = StyleSynthesis(resolution, channels, taper=True)
        self.register_buffer("w_avg", torch.zeros(W_DIM))
        self.register_buffer("w_scale", torch.eye(W_DIM))

    def fit_mapping(self, codes: torch.Tensor) -> None:
        """Fit the mapping to learned codes `(N, 512)`: their mean, and a square root of their covariance."""
        codes = codes.detach().double()
        eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(codes.T))
        self.w_avg.copy_(codes.mean(0))
        self.w_scale.copy_(eigenvectors * eigenvalues.clamp_min(0).sqrt())

    def mapping(self, z: torch.Tensor, c=None, truncation_psi: float = 1.0) -> torch.Tensor:
        """`(B, 512)` → `(B, 16, 512)`."""
        w = self.w_avg + truncation_psi * z @ self.w_scale.T
        return w[:, None].expand(-1, NUM_WS, -1)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.synthesis_net(ws)


def save_trained_stand_in(generator: TrainedStyleGenerator, path: str | Path, training: dict) -> None:
    """Write the trained stand-in (its sizes, weights and fitted mapping) and what its training measured,
    atomically, in a file `torch.load(weights_only=True)` reads."""
    from datamodules.pipeline.files import atomic_write_bytes

    payload = {
        "format": STAND_IN_FORMAT,
        "resolution": generator.img_resolution,
        "channels": generator.channels,
        "state_dict": generator.state_dict(),
        "training": training,
    }
    atomic_write_bytes(Path(path).expanduser(), lambda handle: torch.save(payload, handle))


def load_trained_stand_in(path: str) -> TrainedStyleGenerator:
    """The stand-in `save_trained_stand_in` wrote; a missing, damaged or foreign file is a one-line
    `WeightsError` naming it and the fix."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsError(f"{path}: trained stand-in generator not found; {STAND_IN_HOW_TO}.")
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch.load trips on, the file is not one we wrote
        raise _not_a_stand_in(path, "unreadable: damaged, or not written by torch.save") from None
    try:
        if payload["format"] != STAND_IN_FORMAT:
            raise ValueError(f"format {payload['format']!r}, expected {STAND_IN_FORMAT!r}")
        generator = TrainedStyleGenerator(payload["resolution"], payload["channels"])
        generator.load_state_dict(payload["state_dict"])
    except Exception as error:  # noqa: BLE001 - a missing key, a wrong format or wrong tensor shapes
        raise _not_a_stand_in(path, f"{type(error).__name__}: {str(error).splitlines()[0]}") from None
    return generator


def _not_a_stand_in(path: str, why: str) -> WeightsError:
    return WeightsError(f"{path}: not a trained A2V stand-in generator ({why}); {STAND_IN_HOW_TO} anew.")


def build_generator(config: GeneratorConfig) -> nn.Module:
    """The frozen generator in eval mode: StyleGAN3 from the user's files, else (when allowed) the
    seeded stand-in, identical in every process that builds it, or the trained stand-in from its file."""
    if config.stylegan3_pkl or config.stylegan3_repo:
        generator = load_stylegan3(config.stylegan3_pkl, config.stylegan3_repo)
    elif config.trained_stand_in:
        generator = load_trained_stand_in(config.trained_stand_in)
        rank_zero_warn(
            f"A2V: no StyleGAN3 given: frames come from a small stand-in generator trained on the data's "
            f"face crops ({config.trained_stand_in}, {generator.img_resolution} px), not StyleGAN3."
        )
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


def to_resolution(frames: torch.Tensor, resolution: int) -> torch.Tensor:
    """`(T, 3, S, S)` frames → `(T, 3, R, R)` by area resampling (unchanged when S = R)."""
    if frames.shape[-1] == resolution:
        return frames
    return nn.functional.interpolate(frames, size=(resolution, resolution), mode="area")


def render(generator: nn.Module, ws: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """`(N, 16, 512)` codes → `(N, 3, R, R)` frames clamped to [-1, 1], `chunk` at a time, without grad."""
    with torch.no_grad():
        return torch.cat([generator.synthesis(part).clamp(-1, 1) for part in ws.split(chunk)])
