"""E2E-NR's 68-point face template, in the pixel coordinates of a 128-px aligned crop.

It lives with the data pipeline because it defines where an aligned face sits: preprocessing registers
frames so that the eye and nose centres land on this template's, and the landmark metric (NLMD)
Procrustes-aligns every detected landmark set to the whole template before comparing mouths. Keeping the
68 points here, next to the anchors, means both uses agree on one face.

The points come from the follow-up code's recipe (an average face, dlib landmarks min–max normalised to
[0, 128], scaled by 0.6 and shifted by 25.6), so the landmark box spans [25.6, 102.4] on both axes.
"""

from __future__ import annotations

import numpy as np

TEMPLATE_SIZE = 128

# (x, y) for the 68 iBUG points, in order: jaw 0–16, brows 17–26, nose 27–35, eyes 36–47, mouth 48–67.
E2E_TEMPLATE_68 = np.array(
    [
        (25.6, 36.5),
        (26.5, 47.4),
        (28.6, 58.4),
        (30.9, 68.9),
        (34.6, 78.6),
        (40.1, 87.2),
        (47.1, 94.9),
        (55.3, 100.6),
        (64.2, 102.4),
        (73.1, 100.4),
        (81.1, 94.3),
        (88.1, 86.9),
        (93.6, 78.4),
        (97.2, 68.6),
        (99.5, 58.3),
        (101.6, 47.6),
        (102.4, 36.7),
        (31.5, 29.0),
        (37.0, 25.8),
        (43.8, 25.6),
        (50.3, 27.0),
        (56.7, 30.1),
        (71.1, 29.9),
        (77.6, 27.3),
        (84.0, 25.7),
        (90.7, 26.1),
        (96.3, 29.3),
        (63.9, 38.2),
        (63.9, 45.3),
        (63.9, 52.4),
        (63.7, 59.7),
        (57.8, 64.1),
        (60.6, 65.5),
        (63.9, 66.8),
        (67.1, 65.5),
        (70.1, 64.1),
        (39.6, 38.8),
        (44.0, 35.9),
        (49.5, 36.1),
        (53.7, 40.4),
        (48.7, 41.8),
        (43.4, 41.6),
        (74.1, 40.2),
        (78.3, 36.2),
        (83.8, 36.0),
        (88.4, 38.9),
        (84.4, 41.7),
        (79.1, 41.7),
        (50.0, 77.5),
        (55.1, 74.6),
        (60.2, 73.0),
        (63.8, 74.0),
        (67.6, 73.0),
        (72.6, 74.7),
        (77.9, 77.7),
        (72.5, 82.8),
        (67.8, 85.0),
        (63.8, 85.4),
        (59.8, 84.8),
        (54.9, 82.7),
        (52.8, 77.9),
        (60.2, 77.3),
        (64.0, 77.5),
        (67.6, 77.3),
        (74.8, 78.1),
        (67.6, 78.7),
        (63.8, 78.9),
        (60.0, 78.7),
    ],
    dtype=np.float64,
)
E2E_TEMPLATE_68.setflags(write=False)


def template_points(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The template for a `size`-px crop: `(68, 2)` float64 (x, y)."""
    return E2E_TEMPLATE_68 * (size / TEMPLATE_SIZE)
