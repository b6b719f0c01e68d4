"""The trained stand-in for StyleGAN3: A2V's small synthesis network learned from the data's own face crops,
so that without NVIDIA's pickle the frames A2V renders are faces whose mouths open and close.

`make train EXP=a2v_face_generator` (a `job: prepare` stage, `FaceGeneratorTraining`) trains it on the
training split's crops, the same 1.3× MTCNN crops that `a2v_invert` inverts, and writes it to
`generator.trained_stand_in`; the A2V stages then render with it when given the same setting.

Why GLO (generative latent optimisation) and not a GAN: the stand-in only has to draw the faces it will be
asked to invert, open mouths and closed ones, and on a CPU in minutes. A GAN needs a discriminator, many
more steps and care to stay stable, and may drop the rare wide-open mouths; GLO learns one code per training
frame jointly with the synthesis weights by plain reconstruction, so every training frame is drawn by
construction. The codes are one w per frame, broadcast to the 16 rows as StyleGAN's mapping does; the A2V
inversion later refines the rows separately (W+), as it does with the real generator. The mapping is then
fitted to the learned codes (a Gaussian, `TrainedStyleGenerator.fit_mapping`), so mapping(z) and w_avg,
where the inversion starts, lie among the training faces.

The loss is the L1 distance of the pixels in [-1, 1] (sharper than MSE for the same steps). The training
summary scores the result with the chain's own inversion (`Inverter` with `data.inversion`): PSNR of
inverted training frames and of held-out validation frames, and the share of those renders on which dlib's
detector (the lip-shape measure's, `FrameLandmarks`) finds the face.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from tqdm.auto import tqdm

from datamodules.pipeline.cache import CachedItems
from datamodules.pipeline.configs import as_config
from datamodules.talking_face_windows import to_unit_range

from ..common.images import signed_to_uint8
from .data import A2VDataModule
from .generator import NUM_WS, TrainedStyleGenerator, save_trained_stand_in, to_resolution
from .inversion import Inverter


@dataclass(frozen=True)
class StandInTrainingConfig:
    """Args:
    steps: optimisation steps, each on `batch_size` random training frames.
    lr: Adam's learning rate of the synthesis weights.
    code_lr: Adam's learning rate of the per-frame codes.
    probe_frames: frames of each split (training, held out) inverted to score the result.
    seed: the initial weights and codes and the batches.
    """

    steps: int = 3000
    batch_size: int = 16
    lr: float = 2e-3
    code_lr: float = 1e-2
    probe_frames: int = 32
    seed: int = 0


@dataclass
class GloFit:
    """The trained generator (mapping fitted), its per-frame codes `(N, 512)` and the loss of every step."""

    generator: TrainedStyleGenerator
    codes: torch.Tensor
    losses: list[float]


def reconstruction_loss(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of `(B, 3, R, R)` images in [-1, 1]."""
    return (images - targets).abs().mean()


def fit_glo(
    frames: torch.Tensor, config: StandInTrainingConfig, channels: int, progress: bool = False
) -> GloFit:
    """Train a `TrainedStyleGenerator` and one code per frame on `frames` `(N, 3, R, R)` in [-1, 1] by
    reconstruction, then fit its mapping to the codes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator = TrainedStyleGenerator(frames.shape[-1], channels)
        codes = torch.nn.Parameter(torch.randn(len(frames), generator.w_dim))
        batches = torch.randint(len(frames), (config.steps, config.batch_size))
    optimiser = torch.optim.Adam(
        [
            {"params": generator.synthesis_net.parameters(), "lr": config.lr},
            {"params": [codes], "lr": config.code_lr},
        ]
    )
    losses = []
    with torch.enable_grad():
        for batch in tqdm(batches, desc="stand-in generator (GLO)", unit="step", disable=not progress):
            images = generator.synthesis(codes[batch, None].expand(-1, NUM_WS, -1))
            loss = reconstruction_loss(images, frames[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    generator.fit_mapping(codes)
    return GloFit(generator.eval().requires_grad_(False), codes.detach(), losses)


def split_frames(clips: CachedItems, split: str, resolution: int, every: int = 1) -> torch.Tensor:
    """Every `every`-th frame of the clips of `split`, `(N, 3, R, R)` in [-1, 1] at the generator's side."""
    rows = [r for r, meta in enumerate(clips.metas) if meta["split"] == split]
    if not rows:
        return torch.zeros(0, 3, resolution, resolution)
    return torch.cat(
        [to_resolution(to_unit_range(np.asarray(clips[r][1]["frames"])[::every]), resolution) for r in rows]
    )


def probe_frames(frames: torch.Tensor, count: int) -> torch.Tensor:
    """`count` frames spread evenly over `frames` `(N, 3, R, R)`."""
    return frames[torch.linspace(0, len(frames) - 1, min(count, len(frames))).long()]


def inversion_scores(inverter: Inverter, frames: torch.Tensor, detect) -> dict[str, float]:
    """Invert `frames` `(N, 3, R, R)` with the first-frame schedule: mean PSNR (dB) of the renders and the
    share of renders on which `detect` (`(R, R, 3)` uint8 → landmarks or None) finds a face."""
    codes = inverter.first_frames(frames)
    _, psnr = inverter.scores(codes, frames)
    with torch.no_grad():
        renders = signed_to_uint8(inverter.generator.synthesis(codes))
    return {
        "psnr_db": float(psnr.mean()),
        "faces_found": float(np.mean([detect(render) is not None for render in renders])),
    }


class FaceGeneratorTraining:
    """The `a2v_face_generator` stage (`job: prepare`): prepares A2V's clip crops, trains the stand-in
    on the training split and writes it to `generator.trained_stand_in`.

    Args:
        training: the GLO schedule (`StandInTrainingConfig`).
        **data: `A2VDataModule`'s arguments: the crops and the inversion that scores the result;
            `generator.tiny_resolution` and `tiny_channels` size the network.
    """

    def __init__(self, training: StandInTrainingConfig | dict | None = None, **data):
        self.data = A2VDataModule(**data)
        self.config = as_config(StandInTrainingConfig, training)
        self.generator_config = self.data.generator_config
        if not self.generator_config.trained_stand_in:
            raise ValueError(
                "set data.init_args.generator.trained_stand_in to the file the trained stand-in is written to"
            )
        self.summary: dict = {}

    def prepare_data(self) -> None:
        clips = self.data.prepare_clips()
        resolution = self.generator_config.tiny_resolution
        frames = split_frames(clips, "train", resolution)
        rank_zero_info(f"a2v: training the stand-in generator on {len(frames)} frames at {resolution} px")
        start = time.perf_counter()
        fit = fit_glo(frames, self.config, self.generator_config.tiny_channels, progress=True)
        seconds = time.perf_counter() - start
        self.summary = {
            "file": self.generator_config.trained_stand_in,
            "resolution": resolution,
            "channels": self.generator_config.tiny_channels,
            "parameters": sum(p.numel() for p in fit.generator.parameters()),
            "training_frames": len(frames),
            "training_seconds": round(seconds, 1),
            "first_loss": fit.losses[0],
            "final_loss": float(np.mean(fit.losses[-50:])),
            **self.probe(fit.generator, clips, frames),
            "schedule": asdict(self.config),
        }
        save_trained_stand_in(fit.generator, self.generator_config.trained_stand_in, self.summary)

    def probe(self, generator: TrainedStyleGenerator, clips: CachedItems, training: torch.Tensor) -> dict:
        """Inversion scores (`inversion_scores`) of `probe_frames` training and held-out (validation, else
        test) frames."""
        from ..common.metrics.video_metrics import FrameLandmarks

        inverter, detect = Inverter.build(generator, self.data.inversion_config), FrameLandmarks()
        resolution = generator.img_resolution
        held_out = split_frames(clips, "val", resolution, every=5)
        if not len(held_out):
            held_out = split_frames(clips, "test", resolution, every=5)
        scores = {}
        for name, frames in (("train", training), ("held_out", held_out)):
            if len(frames):
                probe = probe_frames(frames, self.config.probe_frames).to(generator.w_avg.device)
                scores[name] = inversion_scores(inverter, probe, detect)
        return {"inversion": scores}

    def setup(self, stage: str | None = None) -> None:
        """Nothing to set up: the stage's work is done in `prepare_data`."""

    def statistics(self) -> dict:
        return self.summary
