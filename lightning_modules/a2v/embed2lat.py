"""Embed2Lat: Wav2Vec2 features e `(B, L_a, D)` → a transformer of Wav2Vec2's own structure
(conv positional embedding, LayerNorm, post-LN layers) → adaptive average pooling to the N video frames
→ Linear(D, 96), the VAE code μ' of every frame `(B, N, 96)`.

The output Linear starts at zero (weight and bias), so an untrained Embed2Lat predicts the zero code. A
default-initialised Linear after the transformer's LayerNorm gives outputs of variance ≈ 1/3, far above that
of the VAE codes it must match (≈ 0.04 on the demo data), and training would first spend its steps shrinking
them, ending up worse than the zero prediction on small data."""

from __future__ import annotations

import torch
from torch import nn
from torchaudio.models import Wav2Vec2Model, wav2vec2_model


class Embed2Lat(nn.Module):
    """Args:
    architecture: `wav2vec2_model` arguments of the speech encoder (`speech_encoder.architecture`);
        only its transformer part is built.
    latent_dim: the VAE code size.
    dropout: hidden, attention and activation dropout (layerdrop stays as the architecture says).
    initial: a speech encoder whose transformer weights to start from (`init_from_wav2vec2`).
    """

    def __init__(
        self,
        architecture: dict,
        latent_dim: int = 96,
        dropout: float = 0.1,
        initial: Wav2Vec2Model | None = None,
    ):
        super().__init__()
        rates = dict(
            encoder_attention_dropout=dropout, encoder_ff_interm_dropout=dropout, encoder_dropout=dropout
        )
        self.transformer = wav2vec2_model(**{**architecture, **rates}, aux_num_out=None).encoder.transformer
        if initial is not None:
            self.transformer.load_state_dict(initial.encoder.transformer.state_dict())
        self.head = nn.Linear(architecture["encoder_embed_dim"], latent_dim)
        nn.init.zeros_(self.head.weight)  # start from the zero prediction (see the module docstring)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor, frames: int) -> torch.Tensor:
        """`(B, L_a, D)` → `(B, frames, 96)`; frame j averages transformer outputs
        ⌊j·L_a/N⌋ … ⌈(j+1)·L_a/N⌉ − 1 (exactly 2j and 2j + 1 when L_a = 2N)."""
        hidden = self.transformer(features)
        pooled = nn.functional.adaptive_avg_pool1d(hidden.transpose(1, 2), frames).transpose(1, 2)
        return self.head(pooled)
