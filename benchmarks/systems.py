"""Each system at its paper configuration with one training batch, for the benchmarks.

The model is built from the experiment's own config (`experiments/<name>.yaml` and what it extends, no
demo overlay: the paper's widths and resolutions) through the project's LightningCLI, so the benchmarks
time exactly what `make train` trains. The batch comes from that experiment's datamodule reading the tiny
generated fixture, prepared at the paper's resolution, and is tiled to the stated batch size.

A2V's Embed2Lat trains on cached GAN inversions, which need StyleGAN3 weights; its batch is therefore
drawn at the datamodule's shapes (2-s windows: 100 Wav2Vec2-base feature frames, 50 residual frames) and
the transformer is built Wav2Vec2-base shaped without loading any weights.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class System:
    """Args:
    experiment: the config whose model and data are benchmarked.
    batch_size: the paper's (or the authors' code's) training batch, stated in the results.
    cpu_batch: the batch used on a CPU, where a paper batch takes minutes per step.
    unit: what one sample of that batch is.
    frames: video frames per sample (for the real-time factor and frames/s); 0 for still faces.
    overrides: LightningCLI arguments the benchmark needs (weights that cannot be loaded offline).
    """

    experiment: str
    batch_size: int
    cpu_batch: int
    unit: str
    frames: int = 0
    overrides: tuple[str, ...] = field(default_factory=tuple)


SYSTEMS = {
    "e2e_nr": System("e2e_nr_adv", 8, 2, "29-frame 128 px clip", frames=29),
    "wav2pix": System("wav2pix", 64, 8, "1 s → 128 px face"),
    # FaceNet (perceptual term, identity embedder) cannot be loaded offline; its cost is left out.
    "sf2f": System(
        "sf2f",
        256,
        32,
        "1-1.5 s log-mel → 64 px face",
        overrides=("--model.init_args.perceptual_weight=0", "--model.init_args.embedder=thumbnail"),
    ),
    "tcsan": System("tcsan", 4, 2, "25-frame 112 px clip", frames=25),
    "a2v": System("a2v_embed2lat", 256, 16, "2 s window → 50 latent residuals", frames=50),
}
FIXTURE = (
    "--data.init_args.demo_size=tiny",
    "--data.init_args.prepare_workers=0",
    "--trainer.logger=false",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
)


def tile(batch: Any, size: int) -> Any:
    """Repeat every batched tensor along dim 0 (cycling the fixture's samples) to `size` samples."""
    if torch.is_tensor(batch):
        if batch.ndim == 0:
            return batch
        index = torch.arange(size) % batch.shape[0]
        return batch[index].clone()
    if isinstance(batch, dict):
        return {key: tile(value, size) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(tile(value, size) for value in batch)
    return batch


def build(name: str, batch_size: int | None = None, device: str = "cpu") -> tuple[Any, Any, System, Any]:
    """(LightningModule in train mode, one batch of `batch_size`, its System, its datamodule or None). The
    default batch is the paper's on a GPU and the system's `cpu_batch` on a CPU."""
    system = SYSTEMS[name]
    size = batch_size or (system.cpu_batch if device == "cpu" else system.batch_size)
    warnings.filterwarnings("ignore", message=".*stand-in.*|.*does not have many workers.*|.*perceptual.*")
    if name == "a2v":
        module, batch, datamodule = *_embed2lat(size), None
    else:
        module, batch, datamodule = _from_experiment(system, size)
    return module.train(), batch, system, datamodule


def experiment(system: System, *overrides: str):
    """The experiment's LightningCLI (model and datamodule, not run) on the prepared tiny fixture."""
    from experiments.cli import ProjectCLI
    from experiments.configs import stage_configs

    args = [a for c in stage_configs(system.experiment, demo=False, smoke=False) for a in ("--config", c)]
    cli = ProjectCLI(args=[*args, *FIXTURE, *system.overrides, *overrides], run=False)
    cli.datamodule.prepare_data()
    cli.datamodule.setup("fit")
    return cli


def _from_experiment(system: System, size: int) -> tuple[Any, dict, Any]:
    # The fixture has a few samples: take a batch of 2 in the main process, finish it as Lightning does on
    # the device, and tile it.
    cli = experiment(system, "--data.init_args.batch_size=2", "--data.init_args.num_workers=0")
    batch = cli.datamodule.on_after_batch_transfer(next(iter(cli.datamodule.train_dataloader())), 0)
    return cli.model, tile(batch, size), cli.datamodule


def _embed2lat(size: int) -> tuple[Any, dict]:
    from lightning_modules.a2v.embed2lat import Embed2Lat
    from lightning_modules.a2v.module import Embed2LatModule
    from lightning_modules.a2v.speech_encoder import BASE, SpeechEncoderConfig

    module = Embed2LatModule(speech_encoder=SpeechEncoderConfig(allow_random=True))
    module.embed2lat = Embed2Lat(dict(BASE), module.hparams.latent_dim, module.hparams.dropout)
    generator = torch.Generator().manual_seed(0)
    batch = {
        "features": torch.randn(size, 100, BASE["encoder_embed_dim"], generator=generator),
        "residual": torch.randn(size, 50, len(module.hparams.rows) * 512, generator=generator),
    }
    return module, batch
