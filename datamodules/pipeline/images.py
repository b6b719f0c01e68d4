"""Still-image reading for datasets that ship aligned face crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DatasetError

# ImageNet statistics: SF2F trains and generates in this normalised space (spec §1).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_image(path: str | Path, size: int | None) -> np.ndarray:
    """Read any image (grey, RGBA, palette…) as RGB and resize it bilinearly (unless `size` is None).

    Returns:
        `(3, size, size)` uint8 (`(3, H, W)` when size is None).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            rgb = rgb if size is None else rgb.resize((size, size), Image.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DatasetError(f"{path}: cannot read the image ({error}). Replace or delete the file.") from None
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy()
