"""TCSAN + Audio2AU as a LightningModule: MFCC windows + one identity frame → a 112-px talking head.

Per batch (docs/tcsan.md): G makes every frame of the clips from the clip's frame 0 and the
per-frame MFCC windows; the loss is 1.5·L_rec + 1.5·L_id + 0.07·L_per + 0.02·L_au. One Adam with three
parameter groups: the generator's own parts (lr 2e-4), the pretrained Audio2AU networks (1e-6) and the
pretrained AU classifier (1e-7), which sees only L_au and keeps its BN statistics frozen (eval mode).
The paper's final model has no discriminator; `gan_weight > 0` adds CRAN's patch critic (its Fig. 8
experiment). The fusion variants and ablations of Tables 3, 4 and 6 are configs of this one class.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from tqdm.auto import tqdm

from datamodules.pipeline.action_units import AU_NAMES
from datamodules.pipeline.features import MfccConfig, mfcc
from datamodules.talking_face_windows import mfcc_windows

from ..common.contracts import LinkedSpeechRate
from ..common.errors import require_sample_rate
from ..common.images import log_sample_grid, signed_to_uint8
from ..common.metrics.label_scores import BinaryLabelScores
from ..common.metrics.shared_evaluation import TalkingFaceSamples
from ..common.pretrained.perceptual import VGGPerceptual
from ..common.training.checkpoints import load_submodule
from ..common.training.gan import AdversarialModule, LossTerms
from ..common.training.losses import discriminator_adversarial_loss, generator_adversarial_loss
from .fusion import FUSIONS
from .losses import au_class_weights, au_loss, masked_frame_l1, upper_half_l1
from .networks import IMAGE_SIZE, MFCC_COEFFICIENTS, MFCC_STEPS, AUClassifier, Generator, PatchDiscriminator

SAMPLE_RATE = 16000
PRETRAIN_HINT = "`make train EXP=tcsan` trains it first; or pass the checkpoint of EXP={experiment}"


class TCSANModule(TalkingFaceSamples, LinkedSpeechRate, AdversarialModule):
    """TCSAN + Audio2AU (Chen et al., 2022) and its ablations.

    Args:
        fusion: "tcsan" (the paper's), "tcn", "mhatt_tcn", "coatt_tcn" or "gru" (Table 3).
        use_audio2au: add the pretrained Audio2AU features (Table 4).
        width: hidden-width multiplier (1 = the paper's 45.8M-parameter G); the pretrained parts must match.
        image_size: crop side, a multiple of 16 (112 in the paper; linked from the datamodule).
        sample_rate: must be 16000 (linked from the datamodule; the MFCC windows assume it).
        rec_weight, id_weight, per_weight, au_weight: λ of L_rec, L_id, L_per, L_au (1.5, 1.5, 0.07, 0.02).
        gan_weight: weight of the optional frame critic's term in G's loss (0 = no discriminator, the paper).
        vgg_weights: torchvision VGG-19 state dict for L_per; without it L_per is off (a warning says so).
        allow_random_vgg: use a random VGG-19 when no weights are given (tests only).
        au_classifier_from: checkpoint of EXP=tcsan_au_classifier (needed when au_weight > 0).
        audio2au_from: checkpoint of EXP=tcsan_audio2au (needed with use_audio2au).
        pooled_dice: JAA-Net's batch-pooled Dice instead of the paper's per-sample form.
        lr, lr_audio2au, lr_au_classifier: the three parameter groups (2e-4, 1e-6, 1e-7); betas (0.5, 0.999).
        lr_discriminator: the optional critic's Adam (1e-3).
        dropout: inside the temporal blocks.
        gradient_clip_norm: clip G's gradient norm (5).
        samples_to_log: clips in the validation sample grid.
    """

    checkpoint_monitor = ("val/l1", "min")

    def __init__(
        self,
        fusion: str = "tcsan",
        use_audio2au: bool = True,
        width: float = 1.0,
        image_size: int = IMAGE_SIZE,
        sample_rate: int = SAMPLE_RATE,
        rec_weight: float = 1.5,
        id_weight: float = 1.5,
        per_weight: float = 0.07,
        au_weight: float = 0.02,
        gan_weight: float = 0.0,
        vgg_weights: str | None = None,
        allow_random_vgg: bool = False,
        au_classifier_from: str | None = None,
        audio2au_from: str | None = None,
        pooled_dice: bool = False,
        lr: float = 2e-4,
        lr_audio2au: float = 1e-6,
        lr_au_classifier: float = 1e-7,
        lr_discriminator: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        dropout: float = 0.1,
        gradient_clip_norm: float | None = 5.0,
        samples_to_log: int = 4,
        nonfinite: str = "raise",
    ):
        super().__init__(nonfinite=nonfinite, gradient_clip_norm=gradient_clip_norm)
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        require_sample_rate("TCSAN", sample_rate, SAMPLE_RATE)
        self.save_hyperparameters()
        self.generator = Generator(fusion, use_audio2au, width, image_size, dropout)
        self.discriminator = PatchDiscriminator(width)
        self.au_classifier = AUClassifier(width, image_size) if au_weight > 0 or au_classifier_from else None
        self.perceptual = self._perceptual_network()
        self.register_buffer("au_weights", torch.ones(len(AU_NAMES)))
        # The training set's MFCC statistics, copied from the datamodule, so inference standardises alike.
        self.register_buffer("mfcc_mean", torch.zeros(MFCC_COEFFICIENTS))
        self.register_buffer("mfcc_std", torch.ones(MFCC_COEFFICIENTS))
        self._load_pretrained()
        self._samples: dict[str, dict] = {}
        self._scores: dict[str, BinaryLabelScores] = {}

    def _perceptual_network(self) -> VGGPerceptual | None:
        h = self.hparams
        if h.per_weight <= 0:
            return None
        if h.vgg_weights is None and not h.allow_random_vgg:
            rank_zero_warn(
                "No VGG-19 weights (vgg_weights): L_per is OFF for this run, so no paper row matches it "
                "exactly (Table 6 puts L_per at about +0.2 dB PSNR). Pass --model.init_args.vgg_weights=PATH."
            )
            return None
        return VGGPerceptual(h.vgg_weights, allow_random=h.allow_random_vgg)

    def _load_pretrained(self) -> None:
        h = self.hparams
        if self.generator.audio2au is not None:
            if h.audio2au_from:
                load_submodule(self.generator.audio2au, h.audio2au_from, "audio2au.", must_match="width")
            else:
                rank_zero_warn(
                    f"Audio2AU is not pretrained (audio2au_from is unset): "
                    f"{PRETRAIN_HINT.format(experiment='tcsan_audio2au')}."
                )
        if self.au_classifier is not None:
            if h.au_classifier_from:
                load_submodule(self.au_classifier, h.au_classifier_from, "classifier.", must_match="width")
            else:
                rank_zero_warn(
                    f"the AU classifier is not pretrained (au_classifier_from is unset), so L_au "
                    f"supervises with noise: {PRETRAIN_HINT.format(experiment='tcsan_au_classifier')}."
                )

    @property
    def perceptual_active(self) -> bool:
        return self.perceptual is not None

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        rates = getattr(datamodule, "au_rates", None)
        if rates is not None:
            self.au_weights.copy_(au_class_weights(rates))
        elif self.hparams.au_weight > 0 and stage == "fit":
            raise ValueError("au_weight > 0 needs per-frame AU labels: set data.init_args.au_labels")
        if datamodule is not None and datamodule.hparams.get("mfcc_width") != MFCC_STEPS:
            raise ValueError(
                f"TCSAN reads {MFCC_STEPS}-step MFCC windows: set data.init_args.mfcc_width to {MFCC_STEPS}"
            )
        stats = getattr(datamodule, "mfcc_stats", None)
        if stats is not None:
            self.mfcc_mean.copy_(torch.as_tensor(stats[0]))
            self.mfcc_std.copy_(torch.as_tensor(stats[1]))

    def train(self, mode: bool = True):
        """The AU classifier keeps its BN statistics (and dropout off) during full training."""
        super().train(mode)
        if self.au_classifier is not None:
            self.au_classifier.eval()
        return self

    # --- checkpoints: the frozen VGG-19 is rebuilt from its weights file, never stored --------------------

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("perceptual.")
        }

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if self.perceptual is not None:
            state_dict = {
                **{f"perceptual.{k}": v for k, v in self.perceptual.state_dict().items()},
                **state_dict,
            }
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # --- forward and losses ------------------------------------------------------------------------------

    def forward(self, identity: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        """`(B, 3, S, S)` identity in [-1, 1] + `(B, T, 12, 28)` standardised MFCC → `(B, T, 3, S, S)`."""
        return self.generator(identity, mfcc)

    def trains_discriminator(self) -> bool:
        return self.hparams.gan_weight > 0

    def generate(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"video": self.generator(batch["identity"], batch["mfcc"])}

    def _au_valid(self, batch: dict) -> torch.Tensor:
        return (
            batch["frame_mask"] & batch["au_mask"]
            if "au_mask" in batch
            else torch.zeros_like(batch["frame_mask"])
        )

    def generator_loss(self, batch: dict, output: dict) -> LossTerms:
        h, fake, real, valid = self.hparams, output["video"], batch["video"], batch["frame_mask"]
        terms = {"rec": masked_frame_l1(fake, real, valid)}
        total = h.rec_weight * terms["rec"]
        if h.id_weight > 0:
            terms["id"] = upper_half_l1(fake, batch["identity"], valid)
            total = total + h.id_weight * terms["id"]
        if self.perceptual is not None:
            terms["per"] = self.perceptual(fake[valid], real[valid])
            total = total + h.per_weight * terms["per"]
        if h.au_weight > 0:
            terms["au"] = au_loss(
                self.au_classifier(fake.flatten(0, 1)).view(*fake.shape[:2], -1),
                batch["au"],
                self._au_valid(batch),
                self.au_weights,
                h.pooled_dice,
            )
            total = total + h.au_weight * terms["au"]
        if self.trains_discriminator():
            terms["adversarial"] = generator_adversarial_loss(self.discriminator(fake[valid]), "bce")
            total = total + h.gan_weight * terms["adversarial"]
        return LossTerms(total, terms)

    def discriminator_loss(self, batch: dict, output: dict) -> LossTerms:
        valid = batch["frame_mask"]
        real, fake = self.discriminator(batch["video"][valid]), self.discriminator(output["video"][valid])
        loss = discriminator_adversarial_loss(real, fake, "bce")
        return LossTerms(loss, {"frame": loss, "real_score": real.mean(), "fake_score": fake.mean()})

    def configure_optimizers(self):
        h = self.hparams
        pretrained = {
            id(p) for p in (self.generator.audio2au.parameters() if self.generator.audio2au else [])
        }
        groups = [{"params": [p for p in self.generator.parameters() if id(p) not in pretrained], "lr": h.lr}]
        if self.generator.audio2au is not None:
            groups.append({"params": list(self.generator.audio2au.parameters()), "lr": h.lr_audio2au})
        if self.au_classifier is not None and h.au_weight > 0:
            groups.append({"params": list(self.au_classifier.parameters()), "lr": h.lr_au_classifier})
        return [
            torch.optim.Adam(groups, betas=tuple(h.betas)),
            torch.optim.Adam(self.discriminator.parameters(), lr=h.lr_discriminator, betas=tuple(h.betas)),
        ]

    # --- validation and test ------------------------------------------------------------------------------

    def evaluation_step(self, batch: dict, batch_idx: int, split: str) -> None:
        fake, real, valid = self.generate(batch)["video"], batch["video"], batch["frame_mask"]
        size = len(real)
        l1 = masked_frame_l1(fake, real, valid)
        mse = (((fake - real) * 127.5) ** 2)[valid].flatten(1).mean(1)
        self.log(f"{split}/l1", l1, batch_size=size, sync_dist=True, prog_bar=split == "val")
        self.log(
            f"{split}/psnr",
            (10 * torch.log10(255.0**2 / mse.clamp_min(1e-8))).mean(),
            batch_size=size,
            sync_dist=True,
        )
        if self.au_classifier is not None and "au" in batch:
            au_valid = self._au_valid(batch)
            scores = self._scores.setdefault(split, BinaryLabelScores(len(AU_NAMES)))
            scores.update(self.au_classifier(fake[au_valid]) > 0.5, batch["au"][au_valid] > 0.5)
        if batch_idx == 0:
            count = self.hparams.samples_to_log
            self._samples[split] = {"real": real[:count].detach(), "generated": fake[:count].detach()}

    def evaluation_epoch_end(self, split: str) -> None:
        scores = self._scores.pop(split, None)
        if scores is not None:
            mean = scores.compute(AU_NAMES)["mean"]
            self.log(f"{split}/au_classifier_f1", mean["f1"])
            self.log(f"{split}/au_classifier_accuracy", mean["accuracy"])
        kept = self._samples.pop(split, None)
        if kept:
            frames = torch.linspace(0, kept["real"].shape[1] - 1, 8).round().long()
            rows = [
                (kept[name][clip, frames] + 1) / 2
                for clip in range(len(kept["real"]))
                for name in ("real", "generated")
            ]
            log_sample_grid(
                self, f"{split}/samples", rows, caption="per clip: real frames, then generated frames"
            )

    def paper_evaluation(
        self, datamodule, max_clips: int | None = None, batch_size: int = 4, landmarks: bool = True
    ):
        """The paper's test protocol (`evaluation.py`): PSNR, SSIM, AU F1 and accuracy, with its tables."""
        from .evaluation import evaluate

        return evaluate(self, datamodule, max_clips=max_clips, batch_size=batch_size, landmarks=landmarks)

    # --- inference ---------------------------------------------------------------------------------------

    @torch.inference_mode()
    def synthesise_chunks(
        self,
        speech: np.ndarray,
        face: np.ndarray,
        chunk_frames: int = 25,
        fps: int = 25,
        progress: bool = False,
    ) -> Iterator[np.ndarray]:
        """Any length of 16 kHz speech `(L,)` + a face crop `(S, S, 3)` uint8 → `ceil(L·fps/16000)` frames in
        chunks `(t, S, S, 3)` uint8, handed over as they are decoded.

        Encoders, fusion and decoder run `chunk_frames` frames at a time (`Generator.stream`: Audio2AU's
        LSTM carries its state, the fusion sees ±7 frames around each chunk), which bounds the memory of
        long audio; the chunks together equal one pass.
        """
        device = self.mfcc_mean.device
        count = max(1, math.ceil(len(speech) * fps / SAMPLE_RATE))
        stats = (self.mfcc_mean.cpu().numpy(), self.mfcc_std.cpu().numpy())
        features = mfcc(np.asarray(speech, np.float32), MfccConfig(sample_rate=self.hparams.sample_rate))
        windows = mfcc_windows(features, stats, range(count), Fraction(fps), MFCC_STEPS)
        identity = torch.from_numpy(face).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        chunks = self.generator.stream(identity, torch.from_numpy(windows).to(device)[None], chunk_frames)
        total = math.ceil(count / chunk_frames)
        for video in tqdm(chunks, total=total, desc="TCSAN frames", unit="chunk", disable=not progress):
            yield signed_to_uint8(video[0])
