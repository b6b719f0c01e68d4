"""The two pretrained supervisors of TCSAN (docs/tcsan.md, stages 2–3), each its own experiment:

- `AUClassifierModule` (`EXP=tcsan_au_classifier`): the AU classifier on the lower half of **real**
  frames, weighted BCE + Dice, with horizontal flips; later loaded frozen-ish (lr 1e-7, BN in eval mode)
  to supervise generated frames.
- `Audio2AUModule` (`EXP=tcsan_audio2au`): the five Audio2AU networks, each on its own AU with BCE + Dice
  (n = 1, w = 1); their last FC is dropped when the generator loads them.

Both read per-frame AU labels from the datamodule (`au_labels`) and select checkpoints by the mean F1
over the five AUs on the validation clips.
"""

from __future__ import annotations

import torch

from datamodules.pipeline.action_units import AU_NAMES

from ..common.metrics.label_scores import BinaryLabelScores
from ..common.training.checkpoints import load_stage_weights
from ..common.training.split_evaluation import SplitEvaluationModule
from .losses import au_class_weights, au_loss
from .networks import IMAGE_SIZE, AUClassifier, Audio2AU

THRESHOLD = 0.5


class AUPretrainingModule(SplitEvaluationModule):
    """Shared training, validation and optimisation of an AU predictor; subclasses save `lr` and `betas`
    in their hparams and give `predict(batch)` → probabilities `(..., 5)`, targets `(..., 5)`, valid
    `(...)` bool, and `loss(...)` of the three."""

    checkpoint_monitor = ("val/f1_mean", "max")

    def __init__(self):
        super().__init__()
        self.register_buffer("au_weights", torch.ones(len(AU_NAMES)))
        self._scores: dict[str, BinaryLabelScores] = {}

    def _init_from(self, path: str | None) -> None:
        """TCD-TIMIT refinement (as in the paper) starts from a GRID-pretrained checkpoint of this module."""
        if path:
            load_stage_weights(self, path, wanted=lambda name: name != "au_weights", must_match="width")

    def setup(self, stage: str) -> None:
        rates = getattr(getattr(self.trainer, "datamodule", None), "au_rates", None)
        if rates is None:
            raise ValueError(
                "AU pretraining needs per-frame AU labels: set data.init_args.au_labels "
                "(e.g. `au_labels: {source: geometry}`)"
            )
        self.au_weights.copy_(au_class_weights(rates))

    def predict(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def loss(self, probabilities: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        probabilities, targets, valid = self.predict(batch)
        loss = self.loss(probabilities, targets, valid)
        self.log("train/loss", loss, prog_bar=True, batch_size=int(valid.sum()))
        return loss

    def evaluation_step(self, batch: dict, batch_idx: int, split: str) -> None:
        probabilities, targets, valid = self.predict(batch)
        self.log(
            f"{split}/loss", self.loss(probabilities, targets, valid), batch_size=max(int(valid.sum()), 1)
        )
        scores = self._scores.setdefault(split, BinaryLabelScores(len(AU_NAMES)))
        scores.update(probabilities[valid] > THRESHOLD, targets[valid] > THRESHOLD)

    def evaluation_epoch_end(self, split: str) -> None:
        scores = self._scores.pop(split, None)
        if scores is None:
            return
        for name, values in scores.compute(AU_NAMES).items():
            for metric, value in values.items():
                self.log(f"{split}/{metric}_{name.lower()}", value)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))


class AUClassifierModule(AUPretrainingModule):
    """The AU classifier on real frames.

    Args:
        width: hidden-width multiplier (must equal the TCSAN experiment's).
        image_size: crop side (linked from the datamodule).
        frames_per_step: at most this many labelled frames of the batch's clips per step (our default 256;
            the paper gives none).
        flip: mirror a random half of the training frames.
        lr, betas: Adam (1e-4, (0.9, 0.999)).
        init_from: a checkpoint of this module to refine (TCD-TIMIT after GRID).
    """

    def __init__(
        self,
        width: float = 1.0,
        image_size: int = IMAGE_SIZE,
        frames_per_step: int = 256,
        flip: bool = True,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        init_from: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.classifier = AUClassifier(width, image_size)
        self._init_from(init_from)

    def predict(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        valid = batch["frame_mask"] & batch["au_mask"]
        frames, targets = batch["video"][valid], batch["au"][valid]
        if self.training:
            keep = torch.randperm(len(frames), device=frames.device)[: self.hparams.frames_per_step]
            frames, targets = frames[keep], targets[keep]
            if self.hparams.flip:
                mirrored = torch.rand(len(frames), device=frames.device) < 0.5
                frames = torch.where(mirrored[:, None, None, None], frames.flip(-1), frames)
        return (
            self.classifier(frames),
            targets,
            torch.ones(len(frames), dtype=torch.bool, device=frames.device),
        )

    def loss(self, probabilities: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return au_loss(probabilities, targets, valid, self.au_weights)


class Audio2AUModule(AUPretrainingModule):
    """The five Audio2AU networks on whole clips' MFCC windows.

    Args:
        width: hidden-width multiplier (must equal the TCSAN experiment's).
        lr, betas: Adam (1e-4, (0.9, 0.999)); one Adam over five independent networks equals five Adams.
        init_from: a checkpoint of this module to refine (TCD-TIMIT after GRID).
    """

    def __init__(
        self,
        width: float = 1.0,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        init_from: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.audio2au = Audio2AU(width, with_head=True)
        self._init_from(init_from)

    def predict(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        windows = batch["mfcc"].unsqueeze(2)  # (B, T, 1, 12, 28)
        return self.audio2au(windows), batch["au"], batch["frame_mask"] & batch["au_mask"]

    def loss(self, probabilities: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Σ over AUs of each network's own BCE + Dice (n = 1, w = 1), so the networks train independently."""
        one = torch.ones(1, device=probabilities.device)
        return sum(
            au_loss(probabilities[..., i : i + 1], targets[..., i : i + 1], valid, one)
            for i in range(len(AU_NAMES))
        )
