"""The residual VAE: 1536-d normalised Δw of rows 5–7 ↔ a 96-d code, MLPs with GELU."""

from __future__ import annotations

import torch
from torch import nn

HIDDEN = (768, 384, 192)


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers through `widths` with GELU between them and nothing after the last."""
    layers: list[nn.Module] = []
    for k, (width_in, width_out) in enumerate(zip(widths, widths[1:])):
        if k:
            layers.append(nn.GELU())
        layers.append(nn.Linear(width_in, width_out))
    return nn.Sequential(*layers)


class ResidualVAE(nn.Module):
    """Encoder 1536 → 768 → 384 → 192 → (μ, log σ²) of 96 each; decoder 96 → 192 → 384 → 768 → 1536."""

    def __init__(self, input_dim: int = 1536, latent_dim: int = 96, hidden: tuple[int, ...] = HIDDEN):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = mlp([input_dim, *hidden, 2 * latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden), input_dim])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(..., 1536)` → μ, log σ² `(..., 96)`."""
        return self.encoder(x).chunk(2, dim=-1)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """`(..., 96)` → `(..., 1536)`."""
        return self.decoder(code)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction from a reparameterised sample while training, from μ in eval mode; plus μ, log
        σ²."""
        mu, logvar = self.encode(x)
        code = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decode(code), mu, logvar


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over the latent dimensions: `(..., 96)` → `(...)`."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1).sum(-1)


class NormalisedVAE(nn.Module):
    """The VAE with the training split's μ_code and σ_code as buffers, so a checkpoint normalises by itself:
    raw residuals `(..., 1536)` in, codes and raw residuals out."""

    def __init__(self, input_dim: int = 1536, latent_dim: int = 96):
        super().__init__()
        self.vae = ResidualVAE(input_dim, latent_dim)
        self.register_buffer("code_mean", torch.tensor(0.0))
        self.register_buffer("code_std", torch.tensor(1.0))

    def set_statistics(self, mean: float, std: float) -> None:
        self.code_mean.fill_(mean)
        self.code_std.fill_(std)

    def normalise(self, residual: torch.Tensor) -> torch.Tensor:
        return (residual - self.code_mean) / self.code_std

    def denormalise(self, normalised: torch.Tensor) -> torch.Tensor:
        return normalised * self.code_std + self.code_mean

    def code(self, residual: torch.Tensor) -> torch.Tensor:
        """μ `(..., 96)` of raw residuals."""
        return self.vae.encode(self.normalise(residual))[0]

    def residual(self, code: torch.Tensor) -> torch.Tensor:
        """Raw residuals `(..., 1536)` decoded from codes (Eq. 3)."""
        return self.denormalise(self.vae.decode(code))
