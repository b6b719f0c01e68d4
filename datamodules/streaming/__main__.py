"""`python -m datamodules.streaming export CACHE_DIR OUT_URL`: write a prepared cache as tar shards."""

from __future__ import annotations

import argparse

from ..errors import command_errors
from . import __doc__ as package_doc
from .export import export_cache


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m datamodules.streaming",
        description=package_doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export",
        help="write a prepared cache as WebDataset tar shards",
        description="Write the prepared cache CACHE_DIR as WebDataset tar shards plus index.json at OUT_URL. "
        "Rerun the same command to finish an interrupted export. Train from it with "
        "--data.init_args.stream_url=OUT_URL.",
    )
    export.add_argument(
        "cache_dir",
        metavar="CACHE_DIR",
        help="a prepared cache folder (holds manifest.json and shard-*.json), e.g. "
        "data/cache/lrw-<hash>/clips-template-128px-8000hz-<hash>",
    )
    export.add_argument(
        "out_url",
        metavar="OUT_URL",
        help="local folder, file://, s3://bucket/prefix, gs://… (remote schemes need their fsspec "
        "package: s3fs, gcsfs, …)",
    )
    export.add_argument(
        "--shard-mb", type=float, default=256, help="approximate shard size in MiB (default 256)"
    )
    args = parser.parse_args(argv)
    with command_errors():
        index = export_cache(args.cache_dir, args.out_url, args.shard_mb)
    splits = ", ".join(f"{split} {info['samples']}" for split, info in index["splits"].items())
    print(f"{args.out_url}: {len(index['shards'])} shards, {index['samples']} samples ({splits})")


if __name__ == "__main__":
    main()
