"""Still-image reading for datasets that ship aligned face crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DatasetError

# ImageNet statistics: SF2F trains and generates in this normalised space.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def open_rgb(path: str | Path) -> Image.Image:
    """Any picture (grey, RGBA, palette, CMYK…) as upright RGB: the EXIF orientation is applied (phones store
    portraits as landscape pixels plus a rotation tag) and transparency is laid on white.

    Raises PIL's `UnidentifiedImageError` / `OSError` for what is not a readable image."""
    with Image.open(path) as image:
        image.load()
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    return image.convert("RGB")


def read_image(path: str | Path, size: int | None) -> np.ndarray:
    """Read any image as upright RGB (`open_rgb`) and resize it bilinearly (unless `size` is None).

    Returns:
        `(3, size, size)` uint8 (`(3, H, W)` when size is None).
    """
    path = Path(path)
    try:
        rgb = open_rgb(path)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DatasetError(f"{path}: cannot read the image ({error}). Replace or delete the file.") from None
    rgb = rgb if size is None else rgb.resize((size, size), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy()
