"""A2V's two trained stages, the VAE and Embed2Lat, as LightningModules.

- `ResidualVAEModule` (`EXP=a2v_vae`): the VAE over normalised Δw of rows 5–7, MSE + β·KL, batches of
  frames; μ_code and σ_code (the training split's) are buffers, so the checkpoint normalises by itself.
- `Embed2LatModule` (`EXP=a2v_embed2lat`, `EXP=a2v`): Wav2Vec2 features → the frozen VAE encoder's μ of
  each frame, MSE; renders sample videos through the frozen generator with μ' × `mu_gain` (the paper's 500).
  Validation and test log the MSE beside two trivial predictions: zero (`mse_zero_baseline`) and the mean
  μ* of the training split (`mse_mean_baseline`), so a run shows whether it learned more than the mean.

Neither the generator nor Wav2Vec2 is stored in checkpoints: both are rebuilt from their configs (the
user's files, or the seeded stand-ins), like the frozen VGG of TCSAN.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from datamodules.pipeline.configs import as_config

from ..common.chunking import widened_chunks
from ..common.contracts import LinkedSpeechRate, whole_video
from ..common.errors import require_sample_rate
from ..common.images import log_sample_grid, signed_to_uint8
from ..common.metrics.shared_evaluation import TalkingFaceSamples
from ..common.training.checkpoints import load_submodule
from ..common.training.split_evaluation import SplitEvaluationModule
from .embed2lat import Embed2Lat
from .generator import GeneratorConfig, build_generator, render
from .inversion import InversionConfig, Inverter
from .latents import DEFAULT_ROWS, compose
from .speech_encoder import (
    SAMPLE_RATE,
    SpeechEncoderConfig,
    architecture,
    build_speech_encoder,
    features_for_frames,
    speech_features,
)
from .vae import NormalisedVAE, kl_divergence

W_DIM = 512
SAMPLE_FRAMES = 8  # frames per row of the logged sample grids
# Long speech is predicted PREDICTION_FRAMES video frames at a time (10 s at 25 fps; `predicted_windows`),
# each run seeing CONTEXT_FRAMES more of the speech on either side (2 s).
PREDICTION_FRAMES = 250
CONTEXT_FRAMES = 50


class ResidualVAEModule(SplitEvaluationModule):
    """Args:
    rows: W+ rows whose residuals are modelled (input 512 per row).
    latent_dim: the code size (96).
    beta: KL weight (the paper gives none; our default 1e-3).
    lr, betas: Adam.
    """

    checkpoint_monitor = ("val/recon_mse", "min")

    def __init__(
        self,
        rows: tuple[int, ...] = DEFAULT_ROWS,
        latent_dim: int = 96,
        beta: float = 1e-3,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = NormalisedVAE(len(rows) * W_DIM, latent_dim)

    def setup(self, stage: str) -> None:
        stats = getattr(getattr(self.trainer, "datamodule", None), "code_stats", None)
        if stage == "fit" and stats is not None:
            self.model.set_statistics(*stats)

    def losses(self, residual: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.model.normalise(residual)
        reconstruction, mu, logvar = self.model.vae(x)
        recon_mse = (reconstruction - x).square().mean()
        kl = kl_divergence(mu, logvar).mean()
        return {"loss": recon_mse + self.hparams.beta * kl, "recon_mse": recon_mse, "kl": kl}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch["residual"])
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=len(batch["residual"])
        )
        return losses["loss"]

    def evaluation_step(self, batch: dict, batch_idx: int, split: str) -> None:
        losses = self.losses(batch["residual"])  # eval mode: decoded from μ
        self.log_dict({f"{split}/{k}": v for k, v in losses.items()}, batch_size=len(batch["residual"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))


class Embed2LatModule(TalkingFaceSamples, LinkedSpeechRate, SplitEvaluationModule):
    """Args:
    vae_from: the `a2v_vae` stage's checkpoint (filled by `make train EXP=a2v`); frozen here.
    speech_encoder: the Wav2Vec2 whose features are the input (its architecture is copied).
    generator: the frozen generator that renders sample videos.
    inversion: how `synthesise_chunks` inverts a new face (the first-frame schedule).
    rows, latent_dim: must match the VAE.
    dropout: Embed2Lat's hidden, attention and activation dropout.
    init_from_wav2vec2: start the transformer from the speech encoder's weights instead of random.
    lr, betas: Adam (the paper: lr 1e-5).
    mu_gain: μ' is multiplied by this before decoding in rendered videos (the paper: 500); losses use 1.
    sample_rate: must be 16000, Wav2Vec2's rate (linked from the datamodule).
    """

    checkpoint_monitor = ("val/mse", "min")
    # The gain on μ' of the evaluation videos (`evaluation_video`). None renders them as inference does, at
    # `mu_gain`; the end-to-end lip-sync proof sets 1, the scale of the codes Embed2Lat is trained to predict,
    # at which a good prediction renders the inverted mouth itself (500 is the paper's remedy for predictions
    # that stay near the mean).
    evaluation_gain: float | None = None

    def __init__(
        self,
        vae_from: str | None = None,
        speech_encoder: SpeechEncoderConfig | None = None,
        generator: GeneratorConfig | None = None,
        inversion: InversionConfig | None = None,
        rows: tuple[int, ...] = DEFAULT_ROWS,
        latent_dim: int = 96,
        dropout: float = 0.1,
        init_from_wav2vec2: bool = False,
        lr: float = 1e-5,
        betas: tuple[float, float] = (0.9, 0.999),
        mu_gain: float = 500.0,
        sample_rate: int = SAMPLE_RATE,
    ):
        super().__init__()
        require_sample_rate("A2V (Wav2Vec2)", sample_rate, SAMPLE_RATE)
        self.save_hyperparameters()
        self.speech_config = as_config(SpeechEncoderConfig, speech_encoder)
        self.generator_config = as_config(GeneratorConfig, generator)
        self.inversion_config = as_config(InversionConfig, inversion)
        # Plain dicts in hparams: checkpoints then load with torch.load(weights_only=True).
        self.hparams.update(
            speech_encoder=asdict(self.speech_config),
            generator=asdict(self.generator_config),
            inversion=asdict(self.inversion_config),
        )
        self.vae = NormalisedVAE(len(rows) * W_DIM, latent_dim).requires_grad_(False)
        if vae_from:
            load_submodule(self.vae, vae_from, prefix="model.", must_match="rows and latent_dim")
        initial = build_speech_encoder(self.speech_config) if init_from_wav2vec2 else None
        self.embed2lat = Embed2Lat(architecture(self.speech_config), latent_dim, dropout, initial)
        self._frozen: dict[str, nn.Module] = {}  # generator and speech encoder: built on use, never saved
        self._train_mean: torch.Tensor | None = (
            None  # mean μ* of the training clips: made on use, never saved
        )
        self._samples: dict[str, dict] = {}

    def frozen(self, name: str) -> nn.Module:
        if name not in self._frozen:
            build = {
                "generator": lambda: build_generator(self.generator_config),
                "speech_encoder": lambda: build_speech_encoder(self.speech_config),
            }[name]
            self._frozen[name] = build()
        return self._frozen[name].to(self.device)

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen: targets are the encoder's deterministic μ
        return self

    def targets(self, residual: torch.Tensor) -> torch.Tensor:
        """μ* `(B, N, 96)` of residuals `(B, N, 1536)`."""
        with torch.no_grad():
            return self.vae.code(residual)

    def forward(self, features: torch.Tensor, frames: int) -> torch.Tensor:
        """`(B, 2N, D)` → μ' `(B, N, 96)`."""
        return self.embed2lat(features, frames)

    def residuals(self, mu: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """Decoded Δŵ `(B, N, 1536)` of codes `(B, N, 96)` scaled by `gain` (Eq. 3)."""
        with torch.no_grad():
            return self.vae.residual(gain * mu)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        target = self.targets(batch["residual"])
        loss = (self(batch["features"], target.shape[1]) - target).square().mean()
        self.log("train/mse", loss, prog_bar=True, batch_size=len(target))
        return loss

    def train_mean_code(self) -> torch.Tensor | None:
        """The mean μ* `(96,)` over every frame of the datamodule's training clips, computed once (the VAE
        is frozen, so it never changes); None without a trainer or training clips."""
        if self._train_mean is None:
            datamodule = getattr(self._trainer, "datamodule", None)
            clips = getattr(datamodule, "latent_clips", {}).get("train")
            if not clips:
                return None
            from .evaluation import mean_code

            self._train_mean = mean_code(self, clips)
        return self._train_mean.to(self.device)

    def evaluation_step(self, batch: dict, batch_idx: int, split: str) -> None:
        target = self.targets(batch["residual"])
        prediction = self(batch["features"], target.shape[1])
        self.log(f"{split}/mse", (prediction - target).square().mean(), batch_size=len(target))
        self.log(f"{split}/mse_zero_baseline", target.square().mean(), batch_size=len(target))
        train_mean = self.train_mean_code()
        if train_mean is not None:
            self.log(
                f"{split}/mse_mean_baseline", (target - train_mean).square().mean(), batch_size=len(target)
            )
        if batch_idx == 0:
            self._samples[split] = {
                "w0": batch["w0"][:1],
                "prediction": prediction[:1],
                "residual": batch["residual"][:1],
            }

    def evaluation_epoch_end(self, split: str) -> None:
        sample = self._samples.pop(split, None)
        if sample is None or self.trainer.sanity_checking:
            return
        rows = self.sample_rows(sample["w0"], sample["prediction"], sample["residual"])
        log_sample_grid(
            self,
            f"{split}/samples",
            [(r + 1) / 2 for r in rows.values()],
            caption=" | ".join(rows) + " (rows, top to bottom)",
        )

    def sample_rows(
        self, w0: torch.Tensor, prediction: torch.Tensor, residual: torch.Tensor, count: int = SAMPLE_FRAMES
    ) -> dict[str, torch.Tensor]:
        """`count` evenly spaced frames `(count, 3, R, R)` of one clip: the inversion, and the prediction
        at gain 1 and at `mu_gain`."""
        picks = torch.linspace(0, residual.shape[1] - 1, min(count, residual.shape[1])).long()
        generator, rows = self.frozen("generator"), self.hparams.rows
        codes = {
            "inversion": compose(w0, residual[:, picks], rows),
            "predicted (gain 1)": compose(w0, self.residuals(prediction[:, picks]), rows),
            f"predicted (gain {self.hparams.mu_gain:g})": compose(
                w0, self.residuals(prediction[:, picks], self.hparams.mu_gain), rows
            ),
        }
        return {name: render(generator, code[0]) for name, code in codes.items()}

    def configure_optimizers(self):
        return torch.optim.Adam(
            self.embed2lat.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas)
        )

    # ------------------------------------------------------------------ inference

    def invert_face(self, face: np.ndarray) -> torch.Tensor:
        """A `(S, S, 3)` uint8 face crop → its W+ code `(1, 16, 512)` (the first-frame schedule)."""
        inverter = Inverter.build(self.frozen("generator"), self.inversion_config)
        image = torch.from_numpy(np.asarray(face, dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
        return inverter.first_frames(inverter.targets(image)).to(self.device)

    @torch.no_grad()
    def synthesise_chunks(
        self,
        speech: np.ndarray,
        face: np.ndarray,
        chunk_frames: int = 25,
        fps: int = 25,
        progress: bool = False,
        gain: float | None = None,
    ) -> Iterator[np.ndarray]:
        """16 kHz speech `(n,)` and a face crop → N = 25·n/16000 frames at 25 fps, in chunks `(t, R, R, 3)`
        uint8 handed over as they are rendered.

        The face is inverted once (≈ 1000 steps); then `render_chunks` with μ' × `gain` (default `mu_gain`).
        """
        _frame_count(speech, fps)  # before the inversion's thousand steps
        with torch.enable_grad():
            w0 = self.invert_face(face)
        yield from self.render_chunks(speech, w0, chunk_frames, fps, progress, gain)

    @torch.no_grad()
    def render_chunks(
        self,
        speech: np.ndarray,
        w0: torch.Tensor,
        chunk_frames: int = 25,
        fps: int = 25,
        progress: bool = False,
        gain: float | None = None,
    ) -> Iterator[np.ndarray]:
        """16 kHz speech `(n,)` and an identity's W+ code `(1, 16, 512)` → frames in chunks `(t, R, R, 3)`
        uint8, rendered `chunk_frames` at a time from the residuals of `predicted_windows`."""
        from tqdm.auto import tqdm

        frames = _frame_count(speech, fps)
        gain = self.hparams.mu_gain if gain is None else gain
        generator = self.frozen("generator")
        bar = tqdm(total=frames, desc="rendering", unit="frame", disable=not progress)
        for mu in self.predicted_windows(speech, frames, fps):
            residual = self.residuals(mu, gain)
            for start in range(0, residual.shape[1], chunk_frames):
                codes = compose(w0, residual[:, start : start + chunk_frames], self.hparams.rows)[0]
                yield signed_to_uint8(render(generator, codes))
                bar.update(len(codes))
        bar.close()

    def predicted_windows(self, speech: np.ndarray, frames: int, fps: int = 25) -> Iterator[torch.Tensor]:
        """μ' `(1, n, 96)` for consecutive runs of `PREDICTION_FRAMES` video frames of `speech` `(n,)`.

        Wav2Vec2 and Embed2Lat attend over their whole input, so their memory grows with its square: each
        run is predicted from its speech widened by `CONTEXT_FRAMES` on either side (clipped to the
        utterance), and only the run's frames are kept. An utterance of at most `PREDICTION_FRAMES` is one
        window: exactly the whole-utterance pass that training and evaluation use.
        """
        samples_per_frame = SAMPLE_RATE // fps
        wave = torch.from_numpy(np.asarray(speech, dtype=np.float32))[None].to(self.device)
        for start, stop, first, last in widened_chunks(frames, PREDICTION_FRAMES, CONTEXT_FRAMES):
            window = wave[:, first * samples_per_frame : last * samples_per_frame if last < frames else None]
            features = speech_features(self.frozen("speech_encoder"), window)[0]
            mu = self(features_for_frames(features, last - first)[None], last - first)
            yield mu[:, start - first : stop - first]

    def evaluation_video(
        self, datamodule, split: str, index: int, speech: np.ndarray, face: np.ndarray
    ) -> np.ndarray:
        """A test clip from its speech and its cached first-frame inversion (no 1000-step inversion per clip),
        at the size of the clip's crops: the shared metrics compare it frame by frame with them, and the
        generator's resolution may differ (the demo's 32-px stand-in against 64-px crops). μ' is scaled by
        `evaluation_gain`."""
        w0 = torch.from_numpy(np.asarray(datamodule.latent_clips[split][index].w0, dtype=np.float32))[None]
        frames = whole_video(self.render_chunks(speech, w0.to(self.device), gain=self.evaluation_gain))
        if frames.shape[1:3] == face.shape[:2]:
            return frames
        resized = nn.functional.interpolate(
            torch.from_numpy(frames).permute(0, 3, 1, 2).float(),
            size=face.shape[:2],
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def paper_evaluation(
        self, datamodule, max_clips: int | None = None, videos: int = 3, out_dir: str | None = None
    ):
        """Embed2Lat MSE (the paper's one number) on train/val/test beside trivial baselines, per-dimension
        correlation, the VAE's reconstruction and motion retention, frame motion at gain 1 and `mu_gain`,
        sample videos."""
        from .evaluation import evaluate_embed2lat

        return evaluate_embed2lat(self, datamodule, max_clips, videos, Path(out_dir) if out_dir else None)


def _frame_count(speech: np.ndarray, fps: int) -> int:
    """Video frames in `speech` (16 kHz), refusing less than one."""
    frames = len(speech) * fps // SAMPLE_RATE
    if frames < 1:
        raise ValueError(
            f"speech of {len(speech)} samples is shorter than one video frame ({SAMPLE_RATE // fps})."
        )
    return frames
