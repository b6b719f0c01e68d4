"""Command line::

python -m datamodules.synthetic --layout hq_voxceleb --size demo --out data/demo/hq_voxceleb
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import command_errors
from .dataset import LAYOUTS, generate_dataset, read_marker
from .speech import ARTICULATIONS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    sizes = {name: sorted(layout.sizes) for name, layout in LAYOUTS.items()}
    parser = argparse.ArgumentParser(
        prog="python -m datamodules.synthetic",
        description="Generate a deterministic synthetic audio-visual speaker dataset in a real dataset's "
        "on-disk layout. The dataset is built beside --out and renamed into place when complete; a previous "
        "synthetic dataset there is replaced, any other non-empty folder is refused.",
        epilog=f"Sizes per layout: {sizes}. 'tiny' is for tests (seconds), 'demo' for `make train`.",
    )
    parser.add_argument("--layout", required=True, choices=sorted(LAYOUTS), help="dataset layout to write")
    parser.add_argument("--out", required=True, type=Path, help="dataset root folder to create")
    parser.add_argument("--size", default="demo", help="tiny or demo (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default: 0)")
    parser.add_argument(
        "--broken",
        action="store_true",
        help="also write deliberately bad files (listed in <out>/.synthetic.json) for "
        "testing the loaders' rejection of them",
    )
    parser.add_argument(
        "--articulation",
        default="jaw",
        choices=ARTICULATIONS,
        help="jaw: loudness follows the jaw's opening (the demo data); lips: loudness drawn apart, vowels "
        "shape the lips, bilabials close them, and each talking clip's mouth is recorded under <out>/.truth",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    with command_errors():
        root = generate_dataset(
            args.layout, args.out, args.size, args.seed, args.broken, articulation=args.articulation
        )
    counts = read_marker(root)["counts"]
    print(
        f"{args.layout} ({args.size}, seed {args.seed}) written to {root} in "
        f"{time.perf_counter() - started:.1f} s: {counts}"
    )


if __name__ == "__main__":
    main()
