"""Temporal fusion of the per-frame features f_k = f_id ⊕ f_a ⊕ f_au (docs/tcsan.md).

Every variant maps `(B, T, C_in)` → `(B, T, hidden)` for any T ≥ 1:

- `tcsan`: three residual blocks of a dilated **non-causal** conv (k 3, dilation 1, 2, 4) followed by
  intra-frame multi-head self-attention; receptive field exactly frames t−7 … t+7.
- `tcn`: the same blocks without attention.
- `mhatt_tcn`: one residual intra-frame attention on the input, then `tcn`.
- `coatt_tcn`: audio tokens attend to identity tokens and vice versa (residual), then `tcn`.
- `gru`: one unidirectional GRU (the BMVC version; causal).

"Intra-frame" attention cuts each frame's channels into 64-d tokens and attends among the tokens of that
frame only, so it never mixes time (the paper: attention weighs the elements of one frame's feature).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..common.chunking import widened_chunks

TOKEN_DIM = 64
HEADS = 4
DILATIONS = (1, 2, 4)
FUSIONS = ("tcsan", "tcn", "mhatt_tcn", "coatt_tcn", "gru")


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """`(N, C)` → `(N, C/64, 64)`."""
    if x.shape[-1] % TOKEN_DIM:
        raise ValueError(f"intra-frame attention needs channels divisible by {TOKEN_DIM}, got {x.shape[-1]}")
    return x.reshape(x.shape[0], -1, TOKEN_DIM)


class IntraFrameAttention(nn.Module):
    """Self-attention among the 64-d tokens of each frame: `(B, C, T)` → `(B, C, T)`, frames independent."""

    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(TOKEN_DIM, HEADS, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames = x.shape
        tokens = _tokens(x.transpose(1, 2).reshape(batch * frames, channels))
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return attended.reshape(batch, frames, channels).transpose(1, 2)


class TemporalBlock(nn.Module):
    """One level: Z = Dropout(ReLU(WN-Conv1d_d(X))), Ẑ = MHSA(Z) (or Z without attention),
    Y = ReLU(Ẑ + R(X)) with R a 1×1 conv when the width changes. `(B, C_in, T)` → `(B, C_out, T)`.

    The conv has kernel 3, dilation d and zero padding d on both ends: taps at t − d, t, t + d (Eq. 1).
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int, attention: bool, dropout: float):
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(in_channels, out_channels, 3, dilation=dilation, padding=dilation))
        self.dropout = nn.Dropout(dropout)
        self.attention = IntraFrameAttention() if attention else None
        self.residual = (
            nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.dropout(torch.relu(self.conv(x)))
        if self.attention is not None:
            z = self.attention(z)
        return torch.relu(z + self.residual(x))


class TemporalConvNet(nn.Module):
    """Stacked `TemporalBlock`s with dilations 1, 2, 4: `(B, T, C_in)` → `(B, T, hidden)`."""

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        attention: bool,
        dropout: float = 0.1,
        dilations: Sequence[int] = DILATIONS,
    ):
        super().__init__()
        widths = [in_channels] + [hidden] * len(dilations)
        self.blocks = nn.Sequential(
            *[TemporalBlock(widths[i], widths[i + 1], d, attention, dropout) for i, d in enumerate(dilations)]
        )

    @property
    def receptive_field(self) -> int:
        """Frames seen by one output frame: 1 + 2·Σ dilations (15 for 1, 2, 4)."""
        return 1 + 2 * sum(block.conv.dilation[0] for block in self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.transpose(1, 2)).transpose(1, 2)


class ResidualFrameAttention(nn.Module):
    """x + MHSA(x) among each frame's tokens, `(B, T, C)` → `(B, T, C)` (Mh-att+TCN's front)."""

    def __init__(self):
        super().__init__()
        self.attention = IntraFrameAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(x.transpose(1, 2)).transpose(1, 2)


class CoAttention(nn.Module):
    """Identity tokens attend to audio tokens and audio tokens to identity tokens (each residual, 4 heads);
    AU tokens pass unchanged. `(B, T, C)` → `(B, T, C)` with C = the modality widths in order (id, audio,
    AU…)."""

    def __init__(self, modality_channels: Sequence[int]):
        super().__init__()
        self.splits = list(modality_channels)
        self.identity_to_audio = nn.MultiheadAttention(TOKEN_DIM, HEADS, batch_first=True)
        self.audio_to_identity = nn.MultiheadAttention(TOKEN_DIM, HEADS, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, _ = x.shape
        parts = [_tokens(p.reshape(batch * frames, -1)) for p in x.split(self.splits, dim=-1)]
        identity, audio = parts[0], parts[1]
        attended_identity = identity + self.identity_to_audio(identity, audio, audio, need_weights=False)[0]
        attended_audio = audio + self.audio_to_identity(audio, identity, identity, need_weights=False)[0]
        tokens = torch.cat([attended_identity, attended_audio, *parts[2:]], dim=1)
        return tokens.reshape(batch, frames, -1)


class GRUFusion(nn.Module):
    """One unidirectional GRU layer, `(B, T, C_in)` → `(B, T, hidden)`."""

    def __init__(self, in_channels: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(in_channels, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


def build_fusion(kind: str, modality_channels: Sequence[int], hidden: int, dropout: float = 0.1) -> nn.Module:
    """The fusion network `kind` for per-frame inputs made of `modality_channels` (id, audio[, AU])."""
    in_channels = sum(modality_channels)
    if kind == "gru":
        return GRUFusion(in_channels, hidden)
    if kind not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {kind!r}")
    tcn = TemporalConvNet(in_channels, hidden, attention=kind == "tcsan", dropout=dropout)
    if kind == "mhatt_tcn":
        return nn.Sequential(ResidualFrameAttention(), tcn)
    if kind == "coatt_tcn":
        return nn.Sequential(CoAttention(modality_channels), tcn)
    return tcn


def fuse_in_chunks(fusion: nn.Module, inputs: torch.Tensor, chunk_frames: int) -> Iterator[torch.Tensor]:
    """`fusion(inputs)` for `(B, T, C_in)`, made and handed over `chunk_frames` frames at a time: chunks
    `(B, t, hidden)`, together equal to one pass. The GRU carries its state from chunk to chunk; the
    TCN-based fusions, non-causal, see each chunk widened by their receptive radius (7 frames), which
    their outputs inside the chunk cannot see past (attention stays within a frame)."""
    frames = inputs.shape[1]
    if isinstance(fusion, GRUFusion):
        state = None
        for start in range(0, frames, chunk_frames):
            fused, state = fusion.gru(inputs[:, start : start + chunk_frames], state)
            yield fused
        return
    tcn = next(module for module in fusion.modules() if isinstance(module, TemporalConvNet))
    for start, stop, first, last in widened_chunks(frames, chunk_frames, tcn.receptive_field // 2):
        yield fusion(inputs[:, first:last])[:, start - first : stop - first]
