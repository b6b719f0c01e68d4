"""Speech-related facial action unit (AU) labels per video frame: AU10, AU14, AU20, AU25, AU26 (TCSAN).

The paper labels every frame with OpenFace 2.x, which cannot be installed here. Two labelers share one
interface, `labels(key, landmarks, detected) -> (labels (T, 5) uint8, valid (T,) bool)`:

- `OpenFaceLabels`: reads the CSV that OpenFace's `FeatureExtraction -aus` wrote for the clip (the user
  runs OpenFace themselves). Occurrence columns `AU10_c … AU26_c`; frames with `success == 0` or a
  confidence below `min_confidence` are not valid.
- `GeometryLabels`: an offline approximation from dlib's 68 landmarks (docs/tcsan.md), with
  per-video baselines so that a speaker's resting face counts as "no AU". Its thresholds are ratios of the
  inter-ocular distance, so the crop size does not matter. **It is not OpenFace**: how well it agrees with
  OpenFace is unknown, and AU numbers measured with it are not comparable with the paper's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import DatasetError

AU_NAMES = ("AU10", "AU14", "AU20", "AU25", "AU26")  # the fixed order everywhere
OPENFACE_COLUMNS = tuple(f"{name}_c" for name in AU_NAMES)
HOW_TO_RUN_OPENFACE = (
    "run OpenFace 2.x `FeatureExtraction -f <video> -aus -out_dir <openface_dir>/<speaker>` for "
    "every clip (one CSV row per video frame), or use au_labels.source=geometry"
)


class AULabeler(Protocol):
    def labels(
        self, key: str, landmarks: np.ndarray | None, detected: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clip `key` with `(T, 68, 2)` landmarks and `(T,)` detections → `(T, 5)` uint8 labels, `(T,)` bool
        valid."""


@dataclass(frozen=True)
class AULabelConfig:
    """Where AU labels come from.

    Args:
        source: "geometry" (dlib-landmark approximation, offline) or "openface" (the user's OpenFace CSVs).
        openface_dir: for "openface": `<openface_dir>/<clip key>.csv`, e.g. `<dir>/s1/bbaf2n.csv` for GRID.
        min_confidence: OpenFace frames below this face-tracking confidence are not valid (our default 0.8).
        lips_part, jaw_drop, stretch, corner_rise, lip_raise, dimple_narrowing, dimple_gap: the geometry
            thresholds, as fractions of the inter-ocular distance (tune once per dataset).
    """

    source: str = "geometry"
    openface_dir: str | None = None
    min_confidence: float = 0.8
    lips_part: float = 0.04
    jaw_drop: float = 0.06
    stretch: float = 0.05
    corner_rise: float = 0.02
    lip_raise: float = 0.02
    dimple_narrowing: float = 0.03
    dimple_gap: float = 0.02

    def __post_init__(self):
        if self.source not in ("geometry", "openface"):
            raise ValueError(f"au_labels.source must be 'geometry' or 'openface', got {self.source!r}")
        if self.source == "openface" and not self.openface_dir:
            raise ValueError(f"au_labels.source=openface needs au_labels.openface_dir: {HOW_TO_RUN_OPENFACE}")


def build_labeler(config: AULabelConfig) -> AULabeler:
    return OpenFaceLabels(config) if config.source == "openface" else GeometryLabels(config)


# ----------------------------------------------------------------------------- OpenFace CSVs


def read_openface_csv(path: Path, min_confidence: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """One OpenFace `FeatureExtraction` CSV → `(T, 5)` uint8 occurrences and `(T,)` bool valid frames.

    Headers may carry leading spaces (OpenFace writes `frame, face_id, …`). With several faces per frame
    (`face_id`), the first face is used.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [{k.strip(): v for k, v in row.items() if k is not None} for row in csv.DictReader(handle)]
    except FileNotFoundError:
        raise DatasetError(f"{path}: OpenFace CSV not found; {HOW_TO_RUN_OPENFACE}.") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(
            f"{path}: not a readable OpenFace CSV ({error}); rerun OpenFace on the clip."
        ) from None
    needed = ("frame", "success", "confidence") + OPENFACE_COLUMNS
    missing = [c for c in needed if not rows or c not in rows[0]]
    if missing:
        raise DatasetError(
            f"{path}: missing columns {missing}; run FeatureExtraction with -aus (occurrence "
            "columns AUxx_c), or use au_labels.source=geometry."
        )
    rows = [row for row in rows if row.get("face_id", "0").strip() in ("0", "")]
    try:
        frames = np.array([int(float(row["frame"])) for row in rows])
        labels = np.array([[float(row[c]) for c in OPENFACE_COLUMNS] for row in rows])
        valid = np.array(
            [float(row["success"]) != 0 and float(row["confidence"]) >= min_confidence for row in rows]
        )
    except ValueError as error:
        raise DatasetError(f"{path}: a non-numeric value ({error}); rerun OpenFace on the clip.") from None
    order = np.argsort(frames, kind="stable")
    return (labels[order] >= 0.5).astype(np.uint8), valid[order]


class OpenFaceLabels:
    """Labels from `<openface_dir>/<key>.csv`; the CSV must have one row per video frame."""

    def __init__(self, config: AULabelConfig):
        self.folder, self.min_confidence = Path(config.openface_dir), config.min_confidence

    def labels(
        self, key: str, landmarks: np.ndarray | None, detected: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        path = self.folder / f"{key}.csv"
        labels, valid = read_openface_csv(path, self.min_confidence)
        if len(labels) != len(detected):
            raise DatasetError(
                f"{path}: {len(labels)} rows for a clip of {len(detected)} frames; run OpenFace on "
                "the same video (every frame, no frame-rate change)."
            )
        return labels, valid


# ----------------------------------------------------------------------------- landmark geometry


def _distance(landmarks: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(landmarks[:, a] - landmarks[:, b], axis=-1)


class GeometryLabels:
    """Our landmark-geometry approximation of the five AUs (0-indexed dlib-68 points).

    Per frame, with IOD = |p36 − p45| and b(·) a per-video percentile over the clip's detected frames:
    AU25 inner-lip gap > lips_part; AU26 nose–chin length above its 10th percentile by > jaw_drop;
    AU20 mouth width above its 10th percentile by > stretch, corners not raised by > corner_rise;
    AU10 nose–upper-lip length below its 90th percentile by > lip_raise; AU14 mouth width below its
    median by > dimple_narrowing while the lips are closed (gap < dimple_gap).
    """

    def __init__(self, config: AULabelConfig = AULabelConfig()):
        self.config = config

    def labels(
        self, key: str, landmarks: np.ndarray | None, detected: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if landmarks is None:
            raise DatasetError(
                f"{key}: geometry AU labels need landmarks; set crop.landmarks=true (and re-prepare)."
            )
        detected = np.asarray(detected, bool)
        if not detected.any():
            return np.zeros((len(detected), len(AU_NAMES)), np.uint8), detected
        return self.from_landmarks(np.asarray(landmarks, np.float64), detected), detected

    def from_landmarks(self, landmarks: np.ndarray, detected: np.ndarray) -> np.ndarray:
        """`(T, 68, 2)` points and `(T,)` detections → `(T, 5)` uint8; baselines from detected frames only."""
        c = self.config
        iod = np.maximum(_distance(landmarks, 36, 45), 1e-6)
        gap = np.mean([_distance(landmarks, a, b) for a, b in ((61, 67), (62, 66), (63, 65))], axis=0) / iod
        jaw = _distance(landmarks, 33, 8) / iod
        width = _distance(landmarks, 48, 54) / iod
        upper_lip = _distance(landmarks, 33, 51) / iod
        corners_y = landmarks[:, [48, 54], 1].mean(axis=1) / iod

        def baseline(values: np.ndarray, percentile: float) -> float:
            return float(np.percentile(values[detected], percentile))

        corners_raised = baseline(corners_y, 50) - corners_y > c.corner_rise  # image y grows downwards
        labels = np.stack(
            [
                baseline(upper_lip, 90) - upper_lip > c.lip_raise,  # AU10
                (baseline(width, 50) - width > c.dimple_narrowing) & (gap < c.dimple_gap),  # AU14
                (width - baseline(width, 10) > c.stretch) & ~corners_raised,  # AU20
                gap > c.lips_part,  # AU25
                jaw - baseline(jaw, 10) > c.jaw_drop,  # AU26
            ],
            axis=1,
        )
        return labels.astype(np.uint8)


def class_rates(labels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Occurrence rate r_i of each AU over the valid frames, `(N, 5)` + `(N,)` → `(5,)` float64 (0.5 each
    when no frame is valid)."""
    chosen = np.asarray(labels, np.float64)[np.asarray(valid, bool)]
    return chosen.mean(axis=0) if len(chosen) else np.full(len(AU_NAMES), 0.5)
