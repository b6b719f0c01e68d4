"""A lip-sync measure that loudness alone cannot satisfy: the mouth's shape against the true mouth.

For a clip whose true per-frame mouth is known (the `lips` articulation of the generated data records it),
every set of frames, generated, real or a control's, goes through one measure: dlib's 68 landmarks give,
per frame, the inner-lip gap and the mouth-corner distance, each over the outer eye-corner distance (so a
wider mouth is not read as a closed one). Against the truth this gives

- `r_opening` and `r_width`: Pearson r of the measured and the true opening and width;
- `partial_r_opening`: r of the opening after removing what the speech's frame energy explains linearly
  from both, i.e. the part of the opening that loudness does not predict.

A model that only tracks loudness moves the opening with the energy: its `partial_r_opening` and `r_width`
stay near 0, whereas a mouth that says the vowels scores high on all three (`LIP_SYNC_BARS`).

`LipShapeScores` accumulates them over a test set in the shared metric suite (`lip_*` rows): for the
generated clips, for the real frames (the ceiling) and for the clips generated from another clip's speech
(the control), each clip scored against its own truth.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .speech_dependence import INNER_LIP_PAIRS, MOUTH_CORNERS, frame_energy

EYE_CORNERS = (36, 45)
# A clip is measured when dlib finds the face in at least this share of its frames (gaps interpolated).
MEASURED_SHARE = 0.8
# What a clip's frames must reach to count as lip-synced (checked on real frames and on cheaters: tests).
LIP_SYNC_BARS = {"r_opening": 0.5, "r_width": 0.5, "partial_r_opening": 0.6}


def mouth_shape(marks: np.ndarray) -> tuple[float, float]:
    """(inner-lip gap, mouth-corner distance), each over the outer eye-corner distance, of `(68, 2)` marks."""
    eyes = max(float(np.linalg.norm(marks[EYE_CORNERS[0]] - marks[EYE_CORNERS[1]])), 1e-6)
    gap = np.mean([np.linalg.norm(marks[a] - marks[b]) for a, b in INNER_LIP_PAIRS])
    corners = np.linalg.norm(marks[MOUTH_CORNERS[0]] - marks[MOUTH_CORNERS[1]])
    return float(gap / eyes), float(corners / eyes)


def series_from_marks(marks: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-frame (opening, width) `(T,)` from each frame's `(68, 2)` landmarks or None (no face found),
    interpolated over the misses; None when fewer than `MEASURED_SHARE` of the frames have a face."""
    found = np.array([m is not None for m in marks])
    if len(marks) < 3 or found.mean() < MEASURED_SHARE:
        return None
    values = np.array([mouth_shape(m) for m in marks if m is not None])
    times = np.arange(len(marks))
    return np.interp(times, times[found], values[:, 0]), np.interp(times, times[found], values[:, 1])


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
    """`r_opening`, `r_width` and `partial_r_opening` (module doc) of measured against true `(T,)` series."""
    return {
        "r_opening": pearson(opening, true_opening),
        "r_width": pearson(width, true_width),
        "partial_r_opening": partial_r(opening, true_opening, energy),
    }


def lip_synced(scores: dict[str, float]) -> bool:
    """Whether every score reaches its bar in `LIP_SYNC_BARS`."""
    return all(scores[name] >= bar for name, bar in LIP_SYNC_BARS.items())


SCORES = ("r_opening", "r_width", "partial_r_opening")
# Suffix of each scored set of frames in the suite's keys (`lip_r_width_real`, …).
FRAME_SETS = {"": "generated", "_real": "real frames", "_control": "generated from another clip's speech"}
KEYS = tuple(f"lip_{score}{suffix}" for suffix in FRAME_SETS for score in SCORES)


class LipShapeScores:
    """Per-clip lip-shape scores over a test set; `detect(frame)` → `(68, 2)` landmarks or None."""

    def __init__(self, detect: Callable[[np.ndarray], np.ndarray | None]):
        self.detect = detect
        self.scores: dict[str, list[float]] = {}
        self.clips = self.unmeasured = 0

    def update(
        self,
        true_mouth: tuple[np.ndarray, np.ndarray],
        speech: np.ndarray,
        rate: int,
        frames: dict[str, np.ndarray | None],
    ) -> None:
        """One clip: its true (opening, width) per frame, its `(L,)` speech at `rate`, and the `(T, H, W, 3)`
        uint8 frames of each set in `FRAME_SETS` that was made (keyed by suffix)."""
        true_opening, true_width = true_mouth
        self.clips += 1
        for suffix, clip in frames.items():
            if clip is None:
                continue
            length = min(len(clip), len(true_opening))
            series = series_from_marks([self.detect(frame) for frame in clip[:length]])
            if series is None:
                self.unmeasured += 1
                continue
            energy = frame_energy(speech, rate, length)
            scores = lip_sync_scores(*series, true_opening[:length], true_width[:length], energy)
            for name, value in scores.items():
                self.scores.setdefault(f"lip_{name}{suffix}", []).append(value)

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        """Means over clips of every key in `KEYS`, and why each missing one has no value."""
        values = {key: float(np.mean(v)) for key, v in self.scores.items()}
        if not self.clips:
            why = "the test data records no true mouth (generated data: --articulation lips)"
        else:
            why = f"no clip's face was found in {MEASURED_SHARE:.0%} of its frames ({self.unmeasured} tried)"
        return values, {key: why for key in KEYS if key not in values}
