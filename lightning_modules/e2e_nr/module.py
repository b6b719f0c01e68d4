"""E2E-NR as a LightningModule: noisy 8 kHz speech + one face → a 128-px talking-face video at 25 fps.

Training follows the paper's curriculum, one experiment per stage:

- `stage="recon"`: the generator alone, on the mouth-weighted L1 (+ the noise-resilience terms);
  the discriminators are neither run nor stepped.
- `stage="adv"`: initialised from the reconstruction stage's generator (`init_from`), with fresh frame
  and pair discriminators; per batch one D step (both critics, one Adam) on detached fakes, then one G
  step on J = L1(clean) + L1(noisy) + α·J_FD + β·J_PD + γ·L_NR.

With `noise_resilient` (the paper's "Proposed-NR"), every clip runs twice through G, on its clean speech
and on the datamodule's `noisy_audio` mixture, with the same condition image and noise z; without it
("Proposed") only the clean pass and its L1 remain.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from ..common.contracts import LinkedSpeechRate
from ..common.errors import require_sample_rate
from ..common.images import log_sample_grid, signed_to_uint8
from ..common.metrics.shared_evaluation import TalkingFaceSamples
from ..common.training.checkpoints import load_stage_weights
from ..common.training.gan import AdversarialModule, LossTerms
from .losses import (
    MASK_SIGMA_PX,
    NR_FORMS,
    feature_time_std,
    half_lsgan_discriminator,
    half_lsgan_generator,
    masked_l1,
    mouth_mask,
    noise_resilience_loss,
)
from .networks import FrameDiscriminator, Generator, PairDiscriminator, sample_frame_indices
from .speech import normalise_speech

STAGES = ("recon", "adv")
ADVERSARIAL_BRANCHES = ("clean", "noisy", "both")
SAMPLE_RATE = 8000
IMAGE_SIZE = 128


class E2ENRModule(TalkingFaceSamples, LinkedSpeechRate, AdversarialModule):
    """E2E-NR (Eskimez et al., ICASSP 2020).

    Args:
        stage: "recon" (generator only) or "adv" (adds the frame and pair discriminators).
        noise_resilient: train on noisy mixtures too (L̃1 and L_NR); the datamodule must set `noise`.
        width: scales every hidden width of G and both Ds (1.0 = the paper's 32.7M / 68.7M / 20.0M
            parameters; the CPU demo uses a narrow model).
        image_size: must be 128 (linked from the datamodule; the encoder's six layers reach 1×1 from it).
        sample_rate: must be 8000 (linked from the datamodule; the speech encoder's strides assume it).
        frame_weight, pair_weight: α and β on the frame and pair adversarial terms (1e-3 each).
        nr_weight: γ on L_NR (1e-3; absent from the paper's Eq. 1, from the author's earlier code).
        nr_feature: "conv" (the conv stack's 16-channel output) or "fc" (the per-frame vectors).
        nr_form: how L_NR compares the branches (`losses.NR_FORMS`): "relative" (default: the clean features
            are a fixed target and the error is relative to their variation over time), "clean_target", or
            "paper" (the paper's MSE with gradients into both branches).
        nr_ramp_steps: (start, end) training steps: γ is 0 before `start` and grows linearly to `nr_weight`
            at `end`, so L_NR cannot shape the speech encoder before the reconstruction has made the mouth
            depend on the speech; None = γ from the first step (the paper).
        adversarial_branch: which generated videos the critics judge under NR training.
        frames_per_video: frames sampled per video for the frame critic; None = the batch size (paper).
        mask_sigma: σ of the mouth Gaussian in pixels of a 128-px crop.
        condition_frame: "first" frame of the clip as identity, or a "random" one.
        lr_generator, lr_discriminator, betas: Adam (1e-4, 1e-5, β1 0.5).
        init_from: checkpoint of the reconstruction stage; its generator initialises this run.
        samples_to_log: clips in the validation sample grid.
    """

    checkpoint_monitor = ("val/masked_l1", "min")

    @property
    def checkpoint_selection(self) -> str:
        """Stage 1 (reconstruction, no adversary) stops early on the masked mouth L1 and hands on its best
        state; stage 2 trains for a fixed budget and hands on its last."""
        return "best" if self.hparams.stage == "recon" else "last"

    def __init__(
        self,
        stage: str = "recon",
        noise_resilient: bool = True,
        width: float = 1.0,
        image_size: int = IMAGE_SIZE,
        sample_rate: int = SAMPLE_RATE,
        frame_weight: float = 1e-3,
        pair_weight: float = 1e-3,
        nr_weight: float = 1e-3,
        nr_feature: str = "conv",
        nr_form: str = "relative",
        nr_ramp_steps: tuple[int, int] | None = None,
        adversarial_branch: str = "both",
        frames_per_video: int | None = None,
        mask_sigma: float = MASK_SIGMA_PX,
        condition_frame: str = "first",
        lr_generator: float = 1e-4,
        lr_discriminator: float = 1e-5,
        betas: tuple[float, float] = (0.5, 0.999),
        init_from: str | None = None,
        samples_to_log: int = 4,
        nonfinite: str = "raise",
        gradient_clip_norm: float | None = None,
    ):
        super().__init__(nonfinite=nonfinite, gradient_clip_norm=gradient_clip_norm, discriminator_first=True)
        _check_choice("stage", stage, STAGES)
        _check_choice("adversarial_branch", adversarial_branch, ADVERSARIAL_BRANCHES)
        _check_choice("nr_feature", nr_feature, ("conv", "fc"))
        _check_choice("nr_form", nr_form, NR_FORMS)
        require_sample_rate("E2E-NR", sample_rate, SAMPLE_RATE)
        _check_choice("condition_frame", condition_frame, ("first", "random"))
        if image_size != IMAGE_SIZE:
            raise ValueError(
                f"E2E-NR generates {IMAGE_SIZE}-px faces; set data image_size to {IMAGE_SIZE}, "
                f"got {image_size}"
            )
        self.save_hyperparameters()
        self.generator = Generator(width=width)
        self.frame_discriminator = FrameDiscriminator(width=width)
        self.pair_discriminator = PairDiscriminator(width=width)
        if init_from:
            load_stage_weights(
                self, init_from, wanted=lambda name: name.startswith("generator."), must_match="width"
            )
        self._samples: dict[str, dict] = {}

    def trains_discriminator(self) -> bool:
        return self.hparams.stage == "adv"

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        data = getattr(datamodule, "hparams", {})
        if stage == "fit" and self.hparams.noise_resilient and data.get("noise", True) is None:
            raise ValueError(
                "noise_resilient=True needs noisy mixtures: set data.init_args.noise (e.g. "
                "`noise: {}` for the generated training noises), or train with noise_resilient=false"
            )

    # --- forward ---------------------------------------------------------------------------------------

    def forward(
        self, condition: torch.Tensor, speech: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`(B, 3, 128, 128)` face in [-1, 1] and `(B, L)` 8 kHz speech → `(B, ceil(L/320), 3, 128, 128)`."""
        return self.generator(condition, normalise_speech(speech), noise=noise).video

    def _condition(self, video: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        if self.hparams.condition_frame == "first":
            return video[:, 0]
        lengths = frame_mask.sum(1)
        index = (torch.rand(len(video), device=video.device) * lengths).long()
        return video[torch.arange(len(video), device=video.device), index]

    def generate(self, batch: dict) -> dict[str, torch.Tensor]:
        video, frame_mask = batch["video"], batch["frame_mask"]
        condition = self._condition(video, frame_mask)
        clean = normalise_speech(batch["audio"], batch["audio_length"])
        noise = torch.randn(video.shape[0], video.shape[1], self.generator.noise_dim, device=video.device)
        output = {"condition": condition, "clean_speech": clean}
        branches = {"clean": clean}
        if self.hparams.noise_resilient and "noisy_audio" in batch:
            branches["noisy"] = normalise_speech(batch["noisy_audio"], batch["audio_length"])
        for name, speech in branches.items():
            result = self.generator(condition, speech, noise=noise)
            output[f"{name}_video"] = _fit_frames(result.video, video.shape[1])
            output[f"{name}_features"] = (
                result.speech_features if self.hparams.nr_feature == "conv" else result.frame_features
            )
        return output

    # --- losses ----------------------------------------------------------------------------------------

    def _mask(self, batch: dict) -> torch.Tensor:
        return mouth_mask(batch["mouth_centre"], batch["video"].shape[-1], self.hparams.mask_sigma)

    def _judged_branches(self, output: dict) -> list[str]:
        present = [b for b in ("clean", "noisy") if f"{b}_video" in output]
        wanted = self.hparams.adversarial_branch
        return present if wanted == "both" else [b for b in present if b == wanted] or ["clean"]

    def _frame_indices(self, batch: dict) -> torch.Tensor:
        """`(B, K)` frame indices shared by the real and generated videos, inside every clip's frames."""
        valid = int(batch["frame_mask"].sum(1).min())
        count = self.hparams.frames_per_video or len(batch["video"])
        return sample_frame_indices(len(batch["video"]), valid, count).to(batch["video"].device)

    def _frame_scores(
        self, video: torch.Tensor, condition: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        rows = torch.arange(len(video), device=video.device)[:, None]
        frames = video[rows, indices].flatten(0, 1)  # (B·K, 3, S, S)
        repeated = condition.repeat_interleave(indices.shape[1], dim=0)
        return self.frame_discriminator(frames, repeated)

    def _pair_scores(
        self, video: torch.Tensor, batch: dict, output: dict, mask: torch.Tensor
    ) -> torch.Tensor:
        """The pair critic's per-frame scores on valid frames only: `(N,)`."""
        scores = self.pair_discriminator(mask * video, output["condition"], output["clean_speech"])
        return scores[batch["frame_mask"]]

    def generator_loss(self, batch: dict, output: dict) -> LossTerms:
        h, real = self.hparams, batch["video"]
        mask = self._mask(batch)
        time_axis = 2 if h.nr_feature == "conv" else 1  # of the speech features L_NR compares
        terms = {
            "masked_l1": masked_l1(output["clean_video"], real, mask, batch["frame_mask"]),
            "speech_feature_time_std": feature_time_std(output["clean_features"].detach(), time_axis),
        }
        total = terms["masked_l1"]
        if "noisy_video" in output:
            terms["masked_l1_noisy"] = masked_l1(output["noisy_video"], real, mask, batch["frame_mask"])
            terms["noise_resilience"] = noise_resilience_loss(
                output["clean_features"], output["noisy_features"], h.nr_form, time_axis
            )
            gamma = self.noise_resilience_weight()
            terms["noise_resilience_weight"] = torch.tensor(gamma)
            total = total + terms["masked_l1_noisy"] + gamma * terms["noise_resilience"]
        if self.trains_discriminator():
            branches = self._judged_branches(output)
            indices = self._frame_indices(batch)
            terms["frame_adversarial"] = torch.stack(
                [
                    half_lsgan_generator(
                        self._frame_scores(output[f"{b}_video"], output["condition"], indices)
                    )
                    for b in branches
                ]
            ).mean()
            terms["pair_adversarial"] = torch.stack(
                [
                    half_lsgan_generator(self._pair_scores(output[f"{b}_video"], batch, output, mask))
                    for b in branches
                ]
            ).mean()
            total = (
                total
                + h.frame_weight * terms["frame_adversarial"]
                + h.pair_weight * terms["pair_adversarial"]
            )
        return LossTerms(total, terms)

    def noise_resilience_weight(self) -> float:
        """γ at the current training step (`nr_ramp_steps`)."""
        h = self.hparams
        if h.nr_ramp_steps is None:
            return h.nr_weight
        start, end = h.nr_ramp_steps
        return h.nr_weight * min(1.0, max(0.0, (self.global_step - start) / max(end - start, 1)))

    def discriminator_loss(self, batch: dict, output: dict) -> LossTerms:
        """Both critics on real and (detached) generated videos; their losses add, their parameters are
        apart."""
        real, mask = batch["video"], self._mask(batch)
        fakes = [output[f"{b}_video"] for b in self._judged_branches(output)]
        indices = self._frame_indices(batch)
        frame_real = self._frame_scores(real, output["condition"], indices)
        frame_fake = torch.cat([self._frame_scores(f, output["condition"], indices) for f in fakes])
        pair_real = self._pair_scores(real, batch, output, mask)
        pair_fake = torch.cat([self._pair_scores(f, batch, output, mask) for f in fakes])
        terms = {
            "frame": half_lsgan_discriminator(frame_real, frame_fake),
            "pair": half_lsgan_discriminator(pair_real, pair_fake),
            "frame_real_score": frame_real.mean(),
            "frame_fake_score": frame_fake.mean(),
        }
        return LossTerms(terms["frame"] + terms["pair"], terms)

    def configure_optimizers(self):
        h = self.hparams
        critics = nn.ModuleList([self.frame_discriminator, self.pair_discriminator])
        return [
            torch.optim.Adam(self.generator.parameters(), lr=h.lr_generator, betas=tuple(h.betas)),
            torch.optim.Adam(critics.parameters(), lr=h.lr_discriminator, betas=tuple(h.betas)),
        ]

    # --- evaluation ------------------------------------------------------------------------------------

    def evaluation_step(self, batch: dict, batch_idx: int, split: str) -> None:
        output = self.generate(batch)
        mask, size = self._mask(batch), len(batch["video"])
        clean = masked_l1(output["clean_video"], batch["video"], mask, batch["frame_mask"])
        values = {"masked_l1_clean": clean, "l1": (output["clean_video"] - batch["video"]).abs().mean()}
        if "noisy_video" in output:
            values["masked_l1_noisy"] = masked_l1(
                output["noisy_video"], batch["video"], mask, batch["frame_mask"]
            )
        # The monitored value: clean and noisy L1 together when training is noise-resilient.
        values["masked_l1"] = torch.stack(
            [values[k] for k in ("masked_l1_clean", "masked_l1_noisy") if k in values]
        ).mean()
        for name, value in values.items():
            self.log(f"{split}/{name}", value, batch_size=size, sync_dist=True)
        if batch_idx == 0:
            self._samples[split] = {
                k: output[k][: self.hparams.samples_to_log].detach()
                for k in ("clean_video", "noisy_video")
                if k in output
            }
            self._samples[split]["real"] = batch["video"][: self.hparams.samples_to_log]

    def evaluation_epoch_end(self, split: str) -> None:
        """One grid per split: for each logged clip, rows of real / clean-speech / noisy-speech frames."""
        kept = self._samples.pop(split, None)
        if not kept:
            return
        frames = torch.linspace(0, kept["real"].shape[1] - 1, 8).round().long()
        order = ["real", "clean_video", "noisy_video"]
        rows = [
            (kept[name][clip, frames] + 1) / 2
            for clip in range(len(kept["real"]))
            for name in order
            if name in kept
        ]
        log_sample_grid(
            self,
            f"{split}/samples",
            rows,
            caption="per clip: real frames, generated from clean speech, generated from noisy speech",
        )

    def paper_evaluation(
        self,
        datamodule,
        snrs_db: list[float] | None = None,
        noise_types: list[str] | None = None,
        max_clips: int = 1000,
        landmarks: bool = True,
        seed: int = 0,
        batch_size: int = 8,
    ):
        """The paper's SNR sweep on the test split (`evaluation.py`): PSNR, SSIM, NLMD per noise and SNR."""
        from .evaluation import evaluate

        return evaluate(
            self,
            datamodule,
            snrs_db=snrs_db,
            noise_types=noise_types,
            max_clips=max_clips,
            landmarks=landmarks,
            seed=seed,
            batch_size=batch_size,
        )

    # --- inference -------------------------------------------------------------------------------------

    @torch.inference_mode()
    def synthesise_chunks(
        self, speech: np.ndarray, face: np.ndarray, chunk_frames: int = 25, progress: bool = False
    ) -> Iterator[np.ndarray]:
        """Any length of 8 kHz speech `(L,)` + an aligned face `(128, 128, 3)` uint8 → `ceil(L/320)` frames
        in chunks `(t, 128, 128, 3)` uint8, handed over as they are made.

        The chunks carry the recurrent states, so together they equal one pass. One second per chunk keeps
        the 128-px decoder's activations small enough to stay in cache: ≈ 1.6× faster on a CPU than 10-s
        chunks (`benchmarks/inference.py`).
        """
        device = next(self.parameters()).device
        condition = torch.from_numpy(face).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        wave = normalise_speech(torch.from_numpy(np.asarray(speech, np.float32)).to(device)[None])
        for video in self.generator.stream(condition, wave, chunk_frames=chunk_frames, progress=progress):
            yield signed_to_uint8(video[0])


def _fit_frames(video: torch.Tensor, frames: int) -> torch.Tensor:
    """G makes ceil(L/320) frames; the batch's padded audio can be a frame longer than its longest window."""
    if video.shape[1] < frames:
        raise ValueError(
            f"generated {video.shape[1]} frames for a {frames}-frame window: the audio is too short"
        )
    return video[:, :frames]


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
