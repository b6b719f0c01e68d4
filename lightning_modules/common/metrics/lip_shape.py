"""A lip-sync measure that loudness alone cannot satisfy: the mouth's shape against the true mouth.

For a clip whose true per-frame mouth is known (the `lips` articulation of the generated data records it),
every set of frames, generated, real or a control's, goes through one measure, in one mouth box per clip
(located by dlib's 68 landmarks on the real frames, `speech_dependence.mouth_box`):

- opening: how much darker than the region's skin the box is (the open mouth shows its cavity);
- width: the horizontal scale of the box's column darkness profile against the set's median profile (the
  opened cavity keeps its lens shape as the lips spread or round, so its profile stretches with them).

Both read pixels, not landmarks, so the blurred frames of a small generator are measured like sharp real
ones; on real frames they are checked against the landmark shape (`lip_region_validity_r_*`). Against the
truth this gives

- `r_opening`: Pearson r of the measured and the true opening;
- `r_width`: the same for the width, over the frames whose true mouth is open enough for the lips' width to
  show (`WIDTH_SHOWN_OPENING`);
- `partial_r_opening`: r of the opening after removing what the speech's frame energy explains linearly
  from both, i.e. the part of the opening that loudness does not predict.

A model that only tracks loudness moves the opening with the energy: its `partial_r_opening` and `r_width`
stay low, whereas a mouth that says the vowels scores high on all three (`LIP_SYNC_BARS`).

`LipShapeScores` accumulates them over a test set in the shared metric suite (`lip_*` rows): for the
generated clips, for the real frames (the ceiling), for the clips generated from another clip's speech
(the control) and from another clip's speech rescaled to this clip's loudness (the energy-matched
control), each clip scored against its own truth.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .speech_dependence import INNER_LIP_PAIRS, MOUTH_CORNERS, frame_energy, mouth_box, region_luminance

EYE_CORNERS = (36, 45)
# What a clip's frames must reach to count as lip-synced (checked on real frames and on cheaters: tests).
LIP_SYNC_BARS = {"r_opening": 0.5, "r_width": 0.5, "partial_r_opening": 0.6}
# The lips' width is scored on frames whose true opening is at least this: a closed mouth hides it.
WIDTH_SHOWN_OPENING = 0.2
# Fewer open frames than this leave the clip's width unscored.
MIN_WIDTH_FRAMES = 5
# The horizontal scales the width measure tries, relative to the set's median mouth.
WIDTH_SCALES = np.linspace(0.7, 1.4, 71)
# The region's skin level: this percentile of its luminance in each frame.
SKIN_PERCENTILE = 90


def mouth_shape(marks: np.ndarray) -> tuple[float, float]:
    """(inner-lip gap, mouth-corner distance), each over the outer eye-corner distance, of `(68, 2)` marks."""
    eyes = max(float(np.linalg.norm(marks[EYE_CORNERS[0]] - marks[EYE_CORNERS[1]])), 1e-6)
    gap = np.mean([np.linalg.norm(marks[a] - marks[b]) for a, b in INNER_LIP_PAIRS])
    corners = np.linalg.norm(marks[MOUTH_CORNERS[0]] - marks[MOUTH_CORNERS[1]])
    return float(gap / eyes), float(corners / eyes)


def region_darkness(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """How far each pixel of the box falls below the frame's skin level, `(T, h, w)` in [0, 1], from
    `(T, H, W, 3)` uint8 frames; relative to each frame's own skin, so lighting does not read as a mouth."""
    luminance = region_luminance(frames, box)
    skin = np.percentile(luminance.reshape(len(frames), -1), SKIN_PERCENTILE, axis=1)
    return np.clip(skin[:, None, None] - luminance, 0.0, None) / 255.0


def region_shape(frames: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (opening, width) `(T,)` of the mouth in `box` (module doc): the mean darkness, and the
    scale in `WIDTH_SCALES` that best stretches the frames' median column profile into each frame's."""
    darkness = region_darkness(frames, box)
    columns = darkness.sum(1)
    columns = columns / (columns.sum(1, keepdims=True) + 1e-9)
    reference = np.median(columns, axis=0)
    x = np.arange(columns.shape[1])
    centre = (len(x) - 1) / 2
    stretched = np.stack(
        [np.interp(centre + (x - centre) / s, x, reference, left=0.0, right=0.0) / s for s in WIDTH_SCALES]
    )
    misfit = ((columns[:, None, :] - stretched[None]) ** 2).sum(-1)
    return darkness.mean((1, 2)), WIDTH_SCALES[misfit.argmin(1)]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; 0 when either side does not vary (a still mouth follows nothing)."""
    if np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def partial_r(a: np.ndarray, b: np.ndarray, control: np.ndarray) -> float:
    """r of `a` and `b` after removing from each its least-squares line on `control`."""
    design = np.stack([control, np.ones_like(control)], axis=1)

    def residual(values: np.ndarray) -> np.ndarray:
        return values - design @ np.linalg.lstsq(design, values, rcond=None)[0]

    return pearson(residual(a), residual(b))


def lip_sync_scores(
    opening: np.ndarray,
    width: np.ndarray,
    true_opening: np.ndarray,
    true_width: np.ndarray,
    energy: np.ndarray,
) -> dict[str, float]:
    """`r_opening`, `r_width` and `partial_r_opening` (module doc) of measured against true `(T,)` series;
    `r_width` is NaN when fewer than `MIN_WIDTH_FRAMES` frames show it."""
    shown = true_opening >= WIDTH_SHOWN_OPENING
    return {
        "r_opening": pearson(opening, true_opening),
        "r_width": pearson(width[shown], true_width[shown]) if shown.sum() >= MIN_WIDTH_FRAMES else np.nan,
        "partial_r_opening": partial_r(opening, true_opening, energy),
    }


def lip_synced(scores: dict[str, float]) -> bool:
    """Whether every score reaches its bar in `LIP_SYNC_BARS`."""
    return all(scores[name] >= bar for name, bar in LIP_SYNC_BARS.items())


SCORES = ("r_opening", "r_width", "partial_r_opening")
# Suffix of each scored set of frames in the suite's keys (`lip_r_width_real`, …).
FRAME_SETS = {
    "": "generated",
    "_real": "real frames",
    "_control": "generated from another clip's speech",
    "_matched": "generated from another clip's speech at this clip's loudness",
}
# The region measure against the landmark shape on the real frames where dlib finds the face.
VALIDITY = ("lip_region_validity_r_opening", "lip_region_validity_r_width")
KEYS = (*(f"lip_{score}{suffix}" for suffix in FRAME_SETS for score in SCORES), *VALIDITY)


class LipShapeScores:
    """Per-clip lip-shape scores over a test set; `detect(frame)` → `(68, 2)` landmarks or None, used on the
    real frames to find the mouth box and to check the region measure."""

    def __init__(self, detect: Callable[[np.ndarray], np.ndarray | None]):
        self.detect = detect
        self.scores: dict[str, list[float]] = {}
        self.clips = 0

    def update(
        self,
        true_mouth: tuple[np.ndarray, np.ndarray],
        speech: np.ndarray,
        rate: int,
        frames: dict[str, np.ndarray | None],
        real_marks: list | None = None,
    ) -> None:
        """One clip: its true (opening, width) per frame, its `(L,)` speech at `rate`, the `(T, H, W, 3)`
        uint8 frames of each set in `FRAME_SETS` that was made (keyed by suffix; the real ones, `_real`,
        always), and the real frames' landmarks when already found."""
        true_opening, true_width = true_mouth
        real = frames["_real"]
        length = min(len(real), len(true_opening))
        if length < 3:
            return
        marks = real_marks[:length] if real_marks is not None else [self.detect(f) for f in real[:length]]
        box = mouth_box(marks, real.shape[1:3])
        energy = frame_energy(speech, rate, length)
        self.clips += 1
        shapes = {
            suffix: region_shape(clip[:length], box)
            for suffix, clip in frames.items()
            if clip is not None and len(clip) >= length
        }
        for suffix, shape in shapes.items():
            scores = lip_sync_scores(*shape, true_opening[:length], true_width[:length], energy)
            for name, value in scores.items():
                self._add(f"lip_{name}{suffix}", value)
        self._check_region(shapes["_real"], marks, true_opening[:length])

    def _check_region(self, shape: tuple[np.ndarray, np.ndarray], marks: list, true_opening: np.ndarray):
        """`VALIDITY`: the region's opening and width against the landmarks' on the real frames."""
        found = np.array([m is not None for m in marks])
        if found.sum() < MIN_WIDTH_FRAMES:
            return
        by_marks = np.array([mouth_shape(m) for m in marks if m is not None])
        self._add(VALIDITY[0], pearson(shape[0][found], by_marks[:, 0]))
        shown = true_opening[found] >= WIDTH_SHOWN_OPENING
        if shown.sum() >= MIN_WIDTH_FRAMES:
            self._add(VALIDITY[1], pearson(shape[1][found][shown], by_marks[shown, 1]))

    def _add(self, key: str, value: float) -> None:
        if np.isfinite(value):
            self.scores.setdefault(key, []).append(float(value))

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        """Means over clips of every key in `KEYS`, and why each missing one has no value."""
        values = {key: float(np.mean(v)) for key, v in self.scores.items()}
        if not self.clips:
            why = "the test data records no true mouth (generated data: --articulation lips)"
        else:
            why = (
                f"no clip of {self.clips} gave a value: the width needs {MIN_WIDTH_FRAMES} frames with the "
                "true mouth open, the validity check a face found by dlib in the real frames"
            )
        return values, {key: why for key in KEYS if key not in values}
