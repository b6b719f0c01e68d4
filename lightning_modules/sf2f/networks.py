"""SF2F networks (docs/sf2f.md): voice encoder, attention fuser, face decoders and the two critics.

Two presets: "official" follows the authors' released code, "paper" the paper's Tables 9–11 with our
own choices where they are silent or inconsistent. `width_scale` multiplies channel counts (1.0 = the
published sizes; smaller values give CPU-sized smoke and demo models). Every decoder returns a tuple of
images, lowest resolution first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "VoiceEncoder",
    "AttentionFuser",
    "FaceDecoder",
    "PatchDiscriminator",
    "IdentityDiscriminator",
    "sf2f_voice_encoder",
    "sf2f_attention_fuser",
    "sf2f_face_decoder",
    "sf2f_patch_discriminator",
    "sf2f_identity_discriminator",
    "voice2face_encoder",
    "voice2face_decoder",
]

PRESETS = ("official", "paper")
EMBED_DIM = 512  # Table 13: "Fuser Dimension"
ENCODER_CHANNELS = (256, 384, 576, 864)  # Table 9: Inception 1-4 outputs
DECODER_CHANNELS = (512, 256, 128, 64, 32)  # official trunk after the FC, then each GLU up-block
PAPER_DECODER_CHANNELS = (1024, 512, 256, 128, 64, 32)  # Table 10: UpBlocks 1-6
CRITIC_CHANNELS = (64, 128, 256)  # Table 11 / config C4-64-2,C4-128-2,C4-256-2
CRITIC_HIDDEN = 1024
INCEPTION_KERNELS = (2, 3, 5, 7)


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")


def _scaled(channels: tuple[int, ...], scale: float, multiple: int = 4) -> tuple[int, ...]:
    if scale <= 0:
        raise ValueError(f"width_scale must be positive, got {scale}")
    return tuple(max(multiple, int(round(c * scale / multiple)) * multiple) for c in channels)


# ----------------------------------------------------------------------------- voice encoder


class InceptionBlock1d(nn.Module):
    """Four strided branches (kernels 2, 3, 5, 7; Conv1d → BN → ReLU) concatenated on channels.

    `(B, C_in, t)` → `(B, C_out, ceil(t / 2))`; C_out must split into four equal branches.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"out_channels must be divisible by 4 branches, got {out_channels}")
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(in_channels, out_channels // 4, k, stride=2, padding=k // 2, bias=False),
                nn.BatchNorm1d(out_channels // 4),
                nn.ReLU(inplace=True),
            )
            for k in INCEPTION_KERNELS
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = (x.shape[-1] + 1) // 2
        # The k=2 branch yields t/2 + 1 frames for even t: trim it to the others' ceil(t/2).
        return torch.cat([branch(x)[..., :length] for branch in self.branches], dim=1)


class VoiceEncoder(nn.Module):
    """Log-mel → unit-norm voice embedding: `(B, n_mels, T)` → `(B, 512)`, any T ≥ 1.

    Args:
        blocks: the trunk (channels grow, time halves at every block).
        head: last layer to 512 channels (time halves once more); the mean over time is then L2-normalised.
    """

    def __init__(self, blocks: nn.Sequential, head: nn.Module):
        super().__init__()
        self.blocks, self.head = blocks, head

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        features = self.head(self.blocks(mel))  # (B, 512, ceil(T / 32))
        return F.normalize(features.mean(dim=-1), dim=-1)


def sf2f_voice_encoder(preset: str = "official", n_mels: int = 40, width_scale: float = 1.0) -> VoiceEncoder:
    """SF2F's 1D-Inception voice encoder (Table 9). Official: 4,848,192 parameters; paper: 5,401,664."""
    _check_preset(preset)
    channels = (n_mels, *_scaled(ENCODER_CHANNELS, width_scale))
    blocks = nn.Sequential(*(InceptionBlock1d(a, b) for a, b in zip(channels, channels[1:])))
    if preset == "official":
        head = nn.Conv1d(channels[-1], EMBED_DIM, 3, stride=2, padding=1)  # no BN, no ReLU (authors' code)
    else:
        head = InceptionBlock1d(channels[-1], EMBED_DIM)
    return VoiceEncoder(blocks, head)


def voice2face_encoder(n_mels: int = 40, width_scale: float = 1.0) -> VoiceEncoder:
    """The voice2face baseline 1D-CNN, SF2F's "baseline encoder" ablation."""
    channels = (n_mels, *_scaled(ENCODER_CHANNELS, width_scale))
    blocks = nn.Sequential(
        *(
            nn.Sequential(
                nn.Conv1d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)
            )
            for a, b in zip(channels, channels[1:])
        )
    )
    return VoiceEncoder(blocks, nn.Conv1d(channels[-1], EMBED_DIM, 3, stride=2, padding=1))


# ----------------------------------------------------------------------------- fuser


class AttentionFuser(nn.Module):
    """Self-attention over N segment embeddings, then their mean: `(B, N, 512)` → `(B, 512)`.

    Scores s_ij = (W e_i) · e_j, softmax over j, context a_i = Σ_j β_ij e_j. Official (authors' code):
    f_i = W_out [a_i; W e_i] without bias; paper: f_i = W_f [a_i; e_i] + b_f. The output, the mean of f_i,
    is L2-normalised when `normalize` (the decoder was trained on unit-norm inputs). Invariant to the
    order of the segments.
    """

    def __init__(self, dim: int = EMBED_DIM, preset: str = "official", normalize: bool = True):
        super().__init__()
        _check_preset(preset)
        self.preset, self.normalize = preset, normalize
        self.query = nn.Linear(dim, dim, bias=False)
        self.mix = nn.Linear(2 * dim, dim, bias=preset == "paper")

    def attention(self, segments: torch.Tensor) -> torch.Tensor:
        """`(B, N, D)` → attention weights `(B, N, N)`, rows summing to 1."""
        return torch.softmax(self.query(segments) @ segments.transpose(1, 2), dim=-1)

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        context = self.attention(segments) @ segments  # (B, N, D)
        own = self.query(segments) if self.preset == "official" else segments
        fused = self.mix(torch.cat([context, own], dim=-1)).mean(dim=1)  # (B, D)
        return F.normalize(fused, dim=-1) if self.normalize else fused


def sf2f_attention_fuser(preset: str = "official", normalize: bool = True) -> AttentionFuser:
    """SF2F's embedding fuser. Official: 786,432 parameters; paper: 786,944."""
    return AttentionFuser(EMBED_DIM, preset=preset, normalize=normalize)


# ----------------------------------------------------------------------------- decoders


class GLUUpBlock(nn.Sequential):
    """Nearest ×2 → Conv3 (no bias) → BN → GLU: `(B, C_in, w, w)` → `(B, C_out, 2w, 2w)` (official)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, 2 * out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * out_channels),
            nn.GLU(dim=1),
        )


class BilinearUpBlock(nn.Sequential):
    """Bilinear ×2 → Conv3 → ReLU → BN (the paper's UpBlock, with the stride 1 its table's shapes need)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(out_channels),
        )


class FaceDecoder(nn.Module):
    """Voice embedding → faces: `(B, 512)` → tuple of `(B, 3, S, S)`, lowest resolution first.

    Args:
        stem: maps `(B, 512)` to the first feature map.
        blocks: up-sampling blocks; `heads[i]` turns the output of `blocks[outputs[i]]` into an image.
    The images are linear (no tanh): they live in the data's ImageNet-normalised space.
    """

    def __init__(
        self, stem: nn.Module, blocks: nn.ModuleList, heads: nn.ModuleList, outputs: tuple[int, ...]
    ):
        super().__init__()
        if len(heads) != len(outputs):
            raise ValueError(f"{len(heads)} heads for {len(outputs)} outputs")
        self.stem, self.blocks, self.heads, self.outputs = stem, blocks, heads, outputs

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, images = self.stem(embedding), []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.outputs:
                images.append(self.heads[self.outputs.index(index)](x))
        return tuple(images)


class _FCStem(nn.Module):
    """Linear → BN1d → GLU → `(B, C, 4, 4)` (official)."""

    def __init__(self, channels: int):
        super().__init__()
        self.linear = nn.Linear(EMBED_DIM, 2 * channels * 16, bias=False)
        self.norm = nn.BatchNorm1d(2 * channels * 16)
        self.channels = channels

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.norm(self.linear(embedding)), dim=1)  # (B, C * 16)
        return x.view(-1, self.channels, 4, 4)


def _official_head(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.01), nn.Conv2d(channels, 3, 1)
    )


def sf2f_face_decoder(
    preset: str = "official", resolution: int = 64, multires: bool = False, width_scale: float = 1.0
) -> FaceDecoder:
    """SF2F's face decoder. Official 64 px: 11,566,083 parameters (multi-res 11,577,734);
    paper 64 px: 11,010,051 (128 px: 11,014,659)."""
    _check_preset(preset)
    if resolution not in (64, 128):
        raise ValueError(f"resolution must be 64 or 128, got {resolution}")
    if multires and resolution != 128:
        raise ValueError("the multi-resolution decoder emits 64 and 128 px: use resolution=128")
    if preset == "official":
        c = _scaled(DECODER_CHANNELS + (16,), width_scale)
        blocks = [GLUUpBlock(a, b) for a, b in zip(c[:4], c[1:5])]  # 4 → 64 px
        if resolution == 128:
            blocks.append(GLUUpBlock(c[4], c[5]))
        heads = ([_official_head(c[4])] if resolution == 64 or multires else []) + (
            [_official_head(c[5])] if resolution == 128 else []
        )
        stem: nn.Module = _FCStem(c[0])
    else:
        c = _scaled(PAPER_DECODER_CHANNELS + (16,), width_scale)
        blocks = [BilinearUpBlock(a, b) for a, b in zip((EMBED_DIM,) + c[:5], c[:6])]  # 1 → 64 px
        if resolution == 128:
            blocks.append(BilinearUpBlock(c[5], c[6]))
        heads = ([nn.Conv2d(c[5], 3, 1)] if resolution == 64 or multires else []) + (
            [nn.Conv2d(c[6], 3, 1)] if resolution == 128 else []
        )
        stem = nn.Unflatten(1, (EMBED_DIM, 1, 1))
    last = len(blocks) - 1
    outputs = (last - 1, last) if multires else (last,)
    return FaceDecoder(stem, nn.ModuleList(blocks), nn.ModuleList(heads), outputs)


def voice2face_decoder(width_scale: float = 1.0) -> FaceDecoder:
    """The voice2face deconvolution decoder, SF2F's "baseline decoder" ablation, 64 px."""
    c = _scaled((1024, 512, 256, 128, 64), width_scale)
    stem = nn.Sequential(
        nn.Unflatten(1, (EMBED_DIM, 1, 1)), nn.ConvTranspose2d(EMBED_DIM, c[0], 4), nn.ReLU(inplace=True)
    )
    blocks = [
        nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU(inplace=True)) for a, b in zip(c, c[1:])
    ]
    return FaceDecoder(
        stem, nn.ModuleList(blocks), nn.ModuleList([nn.ConvTranspose2d(c[-1], 3, 1)]), (len(blocks) - 1,)
    )


# ----------------------------------------------------------------------------- critics


def _critic_trunk(
    preset: str, image_size: int, width_scale: float, final_activation: bool
) -> tuple[nn.Sequential, int]:
    """Strided 4×4 convs, 64 → 6 px (official: valid padding, LeakyReLU 0.1) or 64 → 8 px (paper: pad 1,
    ReLU)."""
    if image_size not in (64, 128):
        raise ValueError(f"image_size must be 64 or 128, got {image_size}")
    channels = _scaled(CRITIC_CHANNELS + ((512,) if image_size == 128 else ()), width_scale)
    padding, activation = (0, nn.LeakyReLU(0.1)) if preset == "official" else (1, nn.ReLU())
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(zip((3,) + channels, channels)):
        layers.append(nn.Conv2d(a, b, 4, stride=2, padding=padding))
        if index < len(channels) - 1 or final_activation:
            layers += [nn.BatchNorm2d(b), activation]
    return nn.Sequential(*layers), channels[-1]


class PatchDiscriminator(nn.Module):
    """Real/fake critic D_real: `(B, 3, S, S)` → logits `(B, 1, 6, 6)` (official PatchGAN) or `(B, 1)`
    (paper)."""

    def __init__(self, trunk: nn.Module, head: nn.Module):
        super().__init__()
        self.trunk, self.head = trunk, head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(images))


class IdentityDiscriminator(nn.Module):
    """Identity critic D_id: `(B, 3, S, S)` → (identity logits `(B, N_id)`, real/fake logits `(B, 1)` or
    None).

    Official: trunk → global average pool → Linear(C→1024) with no activation → two heads (the
    real/fake head is trained too). Paper: … → Linear → ReLU → identity head only.
    """

    def __init__(
        self, trunk: nn.Module, hidden: nn.Module, identity_head: nn.Module, real_head: nn.Module | None
    ):
        super().__init__()
        self.trunk, self.hidden, self.identity_head, self.real_head = trunk, hidden, identity_head, real_head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.hidden(self.trunk(images).mean(dim=(2, 3)))  # (B, hidden)
        real = self.real_head(features) if self.real_head is not None else None
        return self.identity_head(features), real


def sf2f_patch_discriminator(
    preset: str = "official", image_size: int = 64, width_scale: float = 1.0
) -> PatchDiscriminator:
    """D_real. Official 64 px: 659,521 parameters; paper: 923,969 (one logit; the paper's 2-way softmax head
    would have 924,994, and one logit with BCE replaces it)."""
    _check_preset(preset)
    if preset == "official":
        trunk, channels = _critic_trunk(preset, image_size, width_scale, final_activation=False)
        return PatchDiscriminator(trunk, nn.Conv2d(channels, 1, 1))
    trunk, channels = _critic_trunk(preset, image_size, width_scale, final_activation=True)
    hidden = _scaled((CRITIC_HIDDEN,), width_scale)[0]
    head = nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, 1)
    )
    return PatchDiscriminator(trunk, head)


def sf2f_identity_discriminator(
    num_identities: int, preset: str = "official", image_size: int = 64, width_scale: float = 1.0
) -> IdentityDiscriminator:
    """D_id. 64 px with 2,890 identities: official 3,885,707 parameters; paper 3,885,194."""
    _check_preset(preset)
    if num_identities < 1:
        raise ValueError(f"num_identities must be positive, got {num_identities}")
    official = preset == "official"
    trunk, channels = _critic_trunk(preset, image_size, width_scale, final_activation=not official)
    width = _scaled((CRITIC_HIDDEN,), width_scale)[0]
    hidden = nn.Linear(channels, width) if official else nn.Sequential(nn.Linear(channels, width), nn.ReLU())
    return IdentityDiscriminator(
        trunk, hidden, nn.Linear(width, num_identities), nn.Linear(width, 1) if official else None
    )
