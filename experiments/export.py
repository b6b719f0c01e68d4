"""Write a slim checkpoint for sharing and inference: `make export EXP=… CKPT=… OUT=model.ckpt`.

The file keeps what rebuilding the model and its data transforms needs (the weights, the model's
hyperparameters, the stage's config and experiment, the datamodule's statistics) and drops the optimiser,
scheduler, loop and random states that only resuming needs. It holds tensors and plain values only, so
`torch.load(…, weights_only=True)` reads it, and `make eval` / `make infer` take it from anywhere.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch
import yaml

from datamodules.errors import command_errors
from datamodules.pipeline.files import atomic_write_bytes
from experiments.checkpoints import checked_checkpoint, resolve_checkpoint
from experiments.run_folders import stage_of
from lightning_modules.common.training.callbacks import STAGE_CONFIG_KEY

KEPT = ("state_dict", "hyper_parameters", "pytorch-lightning_version")


def export(experiment: str, checkpoint: str, out: str | Path) -> Path:
    """Write the slim checkpoint of `experiment`'s `checkpoint` (file, stage/run folder or 'last') to
    `out`."""
    source = resolve_checkpoint(experiment, checkpoint)
    state, config, _ = checked_checkpoint(experiment, source)
    datamodule_key = config["data"]["class_path"].rsplit(".", 1)[-1]  # Lightning stores its state_dict here
    slim = {key: state[key] for key in (*KEPT, datamodule_key) if key in state}
    slim[STAGE_CONFIG_KEY] = state.get(STAGE_CONFIG_KEY) or {
        "experiment": experiment,
        "stage": stage_of(source).name,
        "config": yaml.safe_dump(config, sort_keys=False),
    }
    out = Path(out)
    # Serialised in memory first: torch's own file writer reports a full disk as a RuntimeError that names
    # neither the cause nor the file, a Python write as the OSError the user can act on.
    serialised = io.BytesIO()
    torch.save(slim, serialised)
    atomic_write_bytes(out, lambda handle: handle.write(serialised.getbuffer()))
    print(
        f"[export] {source} → {out} ({out.stat().st_size / 2**20:.1f} MiB; was "
        f"{source.stat().st_size / 2**20:.1f} MiB)"
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", help="experiment name (experiments/<name>.yaml)")
    parser.add_argument("--ckpt", default="last", help="checkpoint, stage/run folder or 'last' (default)")
    parser.add_argument("--out", required=True, help="the slim checkpoint to write, e.g. model.ckpt")
    args = parser.parse_args(argv)
    with command_errors():
        export(args.experiment, args.ckpt, args.out)


if __name__ == "__main__":
    main()
