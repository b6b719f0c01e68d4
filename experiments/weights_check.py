"""What a weights folder enables: `make weights-check WEIGHTS_DIR=/w` (default `$TF_WEIGHTS_DIR`).

For every third-party file the project can use (docs/weights.md), under its released name in the folder:
present or not; when present, loaded the way training and evaluation load it (digest in torchvision's file
names, keys and shapes against the network), so a wrong or damaged file is named with the reason. Then,
for every metric and loss that needs weights, whether this folder enables it. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datamodules.errors import ProjectError, command_errors
from lightning_modules.common.metrics.metric_suite import STANDARD_FILES, WEIGHTS_DIR_VARIABLE


@dataclass(frozen=True)
class WeightsFile:
    name: str  # the released file name looked for in the folder
    enables: str
    load: Callable[[str], object] | None  # None: checked for presence only (its loader would run code)


def _lpips(path: str):
    from lightning_modules.common.pretrained.lpips_distance import build_lpips

    return build_lpips("vgg", path)


def _tf_inception(path: str):
    from lightning_modules.common.metrics.distribution import TF_INCEPTION, load_inception

    return load_inception(path, TF_INCEPTION)


def _torchvision_inception(path: str):
    from lightning_modules.common.metrics.distribution import TORCHVISION_INCEPTION, load_inception

    return load_inception(path, TORCHVISION_INCEPTION)


def _syncnet(path: str):
    from lightning_modules.common.metrics.lip_sync import load_syncnet

    return load_syncnet(path)


def _facenet(path: str):
    from lightning_modules.common.pretrained.face_embedding import build_face_embedder

    return build_face_embedder("facenet", path)


def _i3d(path: str):
    from lightning_modules.common.pretrained.i3d import load_i3d

    return load_i3d(path)


def _arcface(path: str):
    from lightning_modules.common.pretrained.arcface import load_arcface

    return load_arcface(path)


def _vggface2(path: str):
    from lightning_modules.common.pretrained.vggface2 import load_vggface2_classifier

    return load_vggface2_classifier(path)


def _vgg19(path: str):
    from lightning_modules.common.pretrained.perceptual import VGGPerceptual

    return VGGPerceptual(path)


FILES = (
    WeightsFile(STANDARD_FILES["lpips_backbone"], "LPIPS (make eval)", _lpips),
    WeightsFile(
        STANDARD_FILES["fid_inception_weights"],
        "FID, KID comparable with published values (make eval)",
        _tf_inception,
    ),
    WeightsFile(
        STANDARD_FILES["inception_weights"],
        "FID, KID on torchvision's Inception, when the TF-Inception file is absent (make eval)",
        _torchvision_inception,
    ),
    WeightsFile(STANDARD_FILES["syncnet_weights"], "LSE-D, LSE-C lip sync (make eval)", _syncnet),
    WeightsFile(
        STANDARD_FILES["facenet_weights"],
        "FaceNet identity metrics; SF2F's perceptual loss and paper "
        "metrics (--model.init_args.facenet_weights)",
        _facenet,
    ),
    WeightsFile(STANDARD_FILES["i3d_weights"], "FVD, video systems (make eval)", _i3d),
    WeightsFile(STANDARD_FILES["arcface_weights"], "CSIM, ArcFace identity similarity (make eval)", _arcface),
    WeightsFile("vgg19-dcbb9e9d.pth", "TCSAN's perceptual loss (--model.init_args.vgg_weights)", _vgg19),
    WeightsFile(
        "resnet50_ft_weight.pkl", "SF2F's VGGFace Score (make eval … --option vfs_weights=PATH)", _vggface2
    ),
    WeightsFile(
        "stylegan3-r-ffhqu-256x256.pkl",
        "A2V on real data (data.init_args.generator.stylegan3_pkl; not loaded here: unpickling it runs code)",
        None,
    ),
)


def check_folder(folder: Path) -> list[tuple[WeightsFile, str, str]]:
    """(file, status, detail) per known file: status `present, loads`, `wrong file`, `missing` or
    `present`."""
    results = []
    for spec in FILES:
        path = folder / spec.name
        if not path.is_file():
            results.append((spec, "missing", f"put the released file at {path}"))
        elif spec.load is None:
            results.append((spec, "present", f"{path.stat().st_size / 2**20:.0f} MiB (not loaded)"))
        else:
            try:
                spec.load(str(path))
            except ProjectError as error:
                results.append((spec, "wrong file", str(error)))
            else:
                results.append((spec, "present, loads", f"{path.stat().st_size / 2**20:.0f} MiB"))
    return results


def report(folder: Path, results: list[tuple[WeightsFile, str, str]]) -> str:
    lines = [f"Weights in {folder}:", "", "| file | status | enables | detail |", "|---|---|---|---|"]
    lines += [f"| {spec.name} | {status} | {spec.enables} | {detail} |" for spec, status, detail in results]
    enabled = [spec.enables for spec, status, _ in results if status in ("present, loads", "present")]
    lines += [
        "",
        f"Enabled: {len(enabled)} of {len(results)}."
        + (
            ""
            if enabled
            else " Without weights, those metrics are reported as not computed and the losses "
            "are off (docs/weights.md says where to get each file)."
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.weights_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--weights-dir", help=f"the folder to check (default ${WEIGHTS_DIR_VARIABLE})")
    args = parser.parse_args(argv)
    with command_errors():
        given = args.weights_dir or os.environ.get(WEIGHTS_DIR_VARIABLE)
        if not given:
            raise ProjectError(f"no weights folder: pass WEIGHTS_DIR=<folder> or set {WEIGHTS_DIR_VARIABLE}.")
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise ProjectError(
                f"{folder}: not a folder. Pass WEIGHTS_DIR=<the folder holding the weights files>."
            )
        print(report(folder, check_folder(folder)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
