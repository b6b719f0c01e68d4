"""The manual-optimisation GAN training step, written once for every adversarial system.

A system subclasses `AdversarialModule` and supplies:

- `generate(batch) -> output`: the generator's forward pass (e.g. the fake images),
- `generator_loss(batch, output) -> LossTerms`,
- `discriminator_loss(batch, output) -> LossTerms` (`output` arrives detached),
- `configure_optimizers()` returning `[generator_optimizer, discriminator_optimizer]`,

optionally `evaluation_step(batch, batch_idx, split)` and `evaluation_epoch_end(split)` (validation and
test share them: `split_evaluation.py`), and may override `trains_discriminator()` to run a generator-only
phase (E2E-NR's reconstruction stage: D is neither run nor stepped). Several discriminators share the one D
optimiser: Adam's state is per parameter, so one Adam over both parameter sets equals two with the same
settings. By default one generator forward per batch serves both players; a system whose reference code runs G
afresh for each player's step sets `fresh_generator_forward = True`.

The choreography (toggle → zero_grad → manual_backward → clip → step, for G then D, or D first) lives
here, so precision plugins, DDP and gradient clipping apply the same way to every system. Note that in
manual optimisation Lightning's `global_step` counts optimiser steps: two per batch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn

from ..errors import NonFiniteLossError
from .split_evaluation import SplitEvaluationModule

NONFINITE_POLICIES = ("raise", "skip")
# A discriminator whose loss stays this low for this many consecutive batches has won: it separates real
# from fake perfectly, G receives no useful gradient, and the run is usually lost (warned once per run).
COLLAPSE_LOSS = 1e-3
COLLAPSE_PATIENCE = 100


@dataclass
class LossTerms:
    """A total loss and its named parts, for logging."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


def detach_all(value: Any) -> Any:
    """Detach every tensor inside nested tuples/lists/dicts."""
    if torch.is_tensor(value):
        return value.detach()
    if isinstance(value, (list, tuple)):
        return type(value)(detach_all(v) for v in value)
    if isinstance(value, dict):
        return {k: detach_all(v) for k, v in value.items()}
    return value


class AdversarialModule(SplitEvaluationModule):
    """Base LightningModule with the shared two-player training step.

    A finished GAN stage hands on its final state (`checkpoint_selection = "last"`), as the papers train for
    a fixed budget: its validation losses (pixel L1 and the like) reward the mean, still face, so selecting
    on them favours ignoring the speech. A system whose monitored metric rewards following the speech sets
    "best".

    `fresh_generator_forward` (class attribute): False shares one `generate(batch)` between D's and G's
    steps; True runs `generate(batch)` once per step, so a stochastic G (dropout) shows each player its own
    sample and G's loss is computed on the forward it back-propagates through, after D's update.

    Args:
        nonfinite: "raise" stops at the first NaN/Inf loss naming the batch; "skip" drops that update.
        gradient_clip_norm: clip each player's gradient norm (manual optimisation ignores the Trainer's).
        discriminator_first: step D before G on each batch (G's loss then sees the updated D).
    """

    checkpoint_selection = "last"
    fresh_generator_forward = False

    def __init__(
        self,
        nonfinite: str = "raise",
        gradient_clip_norm: float | None = None,
        discriminator_first: bool = False,
    ):
        super().__init__()
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
        self.automatic_optimization = False
        self.nonfinite = nonfinite
        self.gradient_clip_norm = gradient_clip_norm
        self.discriminator_first = discriminator_first
        self._collapsed_batches = 0

    def generate(self, batch: Any) -> Any:
        raise NotImplementedError

    def generator_loss(self, batch: Any, output: Any) -> LossTerms:
        raise NotImplementedError

    def discriminator_loss(self, batch: Any, output: Any) -> LossTerms:
        raise NotImplementedError

    def trains_discriminator(self) -> bool:
        """False for a generator-only phase; D's optimiser then never steps."""
        return True

    def training_step(self, batch: Any, batch_idx: int) -> None:
        generator_optimizer, discriminator_optimizer = self.optimizers()
        out = self.generator_output(batch)  # out() is the generator output for the step that calls it
        steps = [(generator_optimizer, lambda: self.generator_loss(batch, out()), "g")]
        if self.trains_discriminator():
            steps.append(
                (discriminator_optimizer, lambda: self.discriminator_loss(batch, detach_all(out())), "d")
            )
        for optimizer, compute_loss, player in steps[::-1] if self.discriminator_first else steps:
            loss = self._player_step(optimizer, compute_loss, player, batch_idx)
            self._log_terms(loss, player, batch)
            if player == "d":
                self._watch_discriminator(float(loss.total.detach()), batch_idx)

    def generator_output(self, batch: Any):
        """A callable giving each player step its generator output: a new `generate(batch)` per call with
        `fresh_generator_forward`, else the one forward run here, before either step."""
        if self.fresh_generator_forward:
            return lambda: self.generate(batch)
        # G's graph stays valid across a D update: D's parameters are not part of it until G's loss runs.
        output = self.generate(batch)
        return lambda: output

    def _watch_discriminator(self, loss: float, batch_idx: int) -> None:
        """Warn (once) when D's loss has stayed below `COLLAPSE_LOSS` for `COLLAPSE_PATIENCE` batches."""
        self._collapsed_batches = self._collapsed_batches + 1 if loss < COLLAPSE_LOSS else 0
        self.log("train/d_collapsed_batches", float(self._collapsed_batches))
        if self._collapsed_batches == COLLAPSE_PATIENCE:
            rank_zero_warn(
                f"GAN divergence: the discriminator's loss has been below {COLLAPSE_LOSS:g} for "
                f"{COLLAPSE_PATIENCE} batches (now {loss:.2e}, epoch {self.current_epoch}, batch "
                f"{batch_idx}, global step {self.global_step}). D separates real from fake perfectly and G "
                "learns little. Consider a lower D learning rate, gradient_clip_norm, or resuming from an "
                "earlier checkpoint."
            )

    def _player_step(self, optimizer, compute_loss, player: str, batch_idx: int) -> LossTerms:
        self.toggle_optimizer(optimizer)
        loss = compute_loss()
        if self._is_finite(loss, player, batch_idx):
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss.total)
            if self.gradient_clip_norm is not None:
                self.clip_gradients(
                    optimizer, gradient_clip_val=self.gradient_clip_norm, gradient_clip_algorithm="norm"
                )
            optimizer.step()
        self.untoggle_optimizer(optimizer)
        return loss

    def _is_finite(self, loss: LossTerms, player: str, batch_idx: int) -> bool:
        if torch.isfinite(loss.total).all():
            return True
        bad = {
            name: float(value.detach())
            for name, value in loss.terms.items()
            if not torch.isfinite(value).all()
        }
        message = (
            f"non-finite {player.upper()} loss {float(loss.total.detach())} at epoch {self.current_epoch}, "
            f"batch {batch_idx}, global step {self.global_step}; non-finite terms: "
            f"{bad or 'none (total only)'}"
        )
        if self.nonfinite == "raise":
            raise NonFiniteLossError(message + ". Set --model.init_args.nonfinite=skip to drop such updates.")
        rank_zero_warn(message + "; update skipped.")
        return False

    def _log_terms(self, loss: LossTerms, player: str, batch: Any) -> None:
        batch_size = _batch_size(batch)
        self.log(f"train/{player}_loss", loss.total.detach(), prog_bar=True, batch_size=batch_size)
        for name, value in loss.terms.items():
            self.log(f"train/{player}_{name}", value.detach(), batch_size=batch_size)


def _batch_size(batch: Any) -> int | None:
    if isinstance(batch, dict):
        first = next((v for v in batch.values() if torch.is_tensor(v)), None)
        return None if first is None else len(first)
    return None
