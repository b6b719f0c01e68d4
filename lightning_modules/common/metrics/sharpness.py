"""CPBD: the no-reference sharpness of Narvekar & Karam (2011), computed as the reference implementation
that talking-face papers cite (python-cpbd 1.0.7) computes it, so our values sit next to published ones.

1. The image is turned into 8-bit grey levels as PIL's "L" mode does (the reference reads files that way).
2. Two edge maps: Canny (scikit-image defaults) decides which 64×64 blocks are edge blocks; a thinned
   Sobel map of horizontal gradients, thresholded at twice the root-mean-square response, gives the
   edges whose widths are measured.
3. Width of a Sobel edge pixel (not on the image border): the gradient angle (`np.gradient`) is quantised
   to 45°; only horizontal edges count (0°: rising to the right, which also covers pixels with no horizontal
   gradient; ±180°: falling). From the pixel, walk left and right while the intensity keeps changing in
   the edge's direction (at most 100 steps each way); the width is the steps taken plus one on each side.
4. Only whole 64×64 blocks count (a border remainder is left out, so a 112-px frame is scored on its
   top-left block). A block with more than 0.2 % Canny pixels is an edge block; its contrast (max − min
   grey level) sets the just-noticeable-blur width, 5 px up to 50 and 3 px above. Each measured edge in
   it gets the probability of blur detection P = 1 − exp(−(w / w_JNB)^3.6), rounded to whole percent.
5. CPBD is the share of those edges with P ≤ 63 %: in [0, 1], higher is sharper.

One deliberate difference: an image with no edge block has no CPBD (NaN), where the reference returns 0;
a flat frame is neither perfectly sharp nor perfectly blurred. `tests/common/test_shared_metrics.py`
checks agreement with values the reference computed, to 0.01.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.feature import canny

BETA = 3.6
SHARP_PERCENT = 63  # P_JNB = 63 %, in the whole percents the reference rounds to
BLOCK = 64
EDGE_BLOCK_SHARE = 0.002
LOW_CONTRAST = 50  # grey levels; up to here the just-noticeable blur width is 5 px, above it 3 px
MAX_STEPS = 100  # how far a width walk goes on each side
# The x-derivative kernel of the reference's Octave-style Sobel: [1 2 1]ᵀ ⊗ [1 0 −1], normalised to Σ|h| = 1.
SOBEL_X = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 8.0


def grey(image: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 RGB → `(H, W)` float64 grey levels rounded as PIL's "L" mode; `(H, W)` as given."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = np.asarray(Image.fromarray(image.astype(np.uint8)).convert("L"))
    return image.astype(np.float64)


def sobel_edges(image: np.ndarray) -> np.ndarray:
    """`(H, W)` bool: pixels whose squared x-gradient exceeds twice its root mean square and is a strict
    local maximum along the row or along the column (zero outside the image)."""
    strength = ndimage.convolve(image, SOBEL_X) ** 2
    strength[strength <= 2.0 * np.sqrt(strength.mean())] = 0.0
    padded = np.pad(strength, 1)
    centre = padded[1:-1, 1:-1]
    along_row = (centre > padded[1:-1, :-2]) & (centre > padded[1:-1, 2:])
    along_column = (centre > padded[:-2, 1:-1]) & (centre > padded[2:, 1:-1])
    return along_row | along_column


def _steps(line: np.ndarray, start: int, step: int, rising: float) -> int:
    """How many consecutive pairs (start, start + step), (start + step, start + 2·step), … keep changing by
    `rising`'s sign in the walking direction, at most `MAX_STEPS`."""
    count, inner = 0, start
    while (
        count < MAX_STEPS
        and 0 <= inner + step < len(line)
        and (line[inner + step] - line[inner]) * rising > 0
    ):
        count, inner = count + 1, inner + step
    return count


def edge_widths(image: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Width in pixels of every horizontal edge pixel of `edges` (0 elsewhere), as described in step 3.

    Args:
        image: `(H, W)` float grey levels; edges: `(H, W)` bool.
    """
    gradient_y, gradient_x = np.gradient(image)
    angles = np.where(gradient_x != 0, np.degrees(np.arctan2(gradient_y, gradient_x)), 0.0)
    widths = np.zeros_like(image)
    if not np.any(angles):  # the reference measures nothing in an image without any angled gradient
        return widths
    quantised = 45.0 * np.round(angles / 45.0)
    inside = np.zeros_like(edges, dtype=bool)
    inside[1:-1, 1:-1] = True
    for row, column in zip(*np.nonzero(edges & inside & np.isin(quantised, (0.0, 180.0, -180.0)))):
        # 0°: intensity rises to the right, so it falls walking left; ±180°: the opposite.
        rising = 1.0 if quantised[row, column] == 0.0 else -1.0
        line = image[row]
        left = 1 + _steps(line, column - 1, -1, -rising)
        right = 1 + _steps(line, column + 1, 1, rising)
        widths[row, column] = left + right
    return widths


def cpbd(image: np.ndarray) -> float:
    """CPBD of one image: `(H, W, 3)` uint8 RGB or `(H, W)` grey → float in [0, 1], NaN with no edge block."""
    luminance = grey(image)
    block_edges = canny(luminance)
    widths = edge_widths(luminance, sobel_edges(luminance))
    sharp = total = 0
    for top in range(0, luminance.shape[0] - BLOCK + 1, BLOCK):
        for left in range(0, luminance.shape[1] - BLOCK + 1, BLOCK):
            block = (slice(top, top + BLOCK), slice(left, left + BLOCK))
            if np.count_nonzero(block_edges[block]) <= EDGE_BLOCK_SHARE * BLOCK * BLOCK:
                continue
            contrast = int(luminance[block].max() - luminance[block].min())
            jnb_width = 5.0 if contrast <= LOW_CONTRAST else 3.0
            block_widths = widths[block][widths[block] != 0]
            percents = np.round(100.0 * (1.0 - np.exp(-((block_widths / jnb_width) ** BETA))))
            sharp += int(np.count_nonzero(percents <= SHARP_PERCENT))
            total += len(block_widths)
    return sharp / total if total else float("nan")
