"""Does the output follow the speech? Weight-free checks, run offline for every system.

Video systems (per clip, then averaged over clips):

- mouth opening per frame against speech energy per frame: Pearson r at lag 0 and over lags −5…+5 frames
  (a positive lag: the mouth moves after the sound), for the generated clip, for the real frames (the
  ceiling) and for the clip generated from another clip's speech but scored against this clip's speech
  (the control: what a model that ignores the speech reaches);
- swap sensitivity: how much the generated mouth region changes when the speech is swapped, relative to
  how much the real mouth region moves over the clip (0: the speech plays no part; about 1: as much as
  real speech moves a real mouth);
- silence: the share of frames generated from silence whose mouth is less open than the median frame
  generated from the speech, ties counting half (0.5 when the speech plays no part, 1 when silence
  closes the mouth).

Mouth opening comes from dlib's 68 landmarks (inner-lip gap over mouth width) when a face is found in
nearly every frame of the clip's generated, real and control frames alike, otherwise, for all three, from
the darkness of the mouth region (the open mouth shows its cavity), the region being located by the real
frames' landmarks: one measure per clip, so the real frames' r is a ceiling on the generated frames'
scale. `mouth_region_validity_r` reports how well the region measure agrees with the landmark measure on
real frames, where both exist.

Face systems: `identity_retrieval` scores faces generated from held-out speech with an embedder that is
not trained with the model, against chance, against real faces of the speaker, and against the same faces
attributed to another speaker (the control).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

FPS = 25
MAX_LAG = 5
# A clip uses landmarks when dlib finds the face in at least this share of its frames (gaps interpolated).
LANDMARK_SHARE = 0.8
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))  # upper and lower inner-lip points facing each other
MOUTH_CORNERS = (48, 54)
MOUTH_POINTS = slice(48, 68)
# `loudness_matched` amplifies a near-silent frame at most this much (its noise floor is not speech).
MAX_MATCHING_GAIN = 30.0
# Where an aligned face crop holds its mouth, as fractions of the side, when no real frame has landmarks.
DEFAULT_MOUTH_BOX = (0.30, 0.62, 0.70, 0.90)  # x0, y0, x1, y1


def frame_energy(speech: np.ndarray, rate: int, frames: int, fps: int = FPS) -> np.ndarray:
    """Log mean power of the speech under each video frame, `(frames,)`; frame t covers [t/fps, (t+1)/fps)."""
    speech = np.asarray(speech, np.float64)
    hop = rate / fps
    energy = np.empty(frames)
    for t in range(frames):
        window = speech[int(round(t * hop)) : int(round((t + 1) * hop))]
        energy[t] = np.log(np.mean(window**2) + 1e-8) if len(window) else np.log(1e-8)
    return energy


def loudness_matched(speech: np.ndarray, reference: np.ndarray, rate: int, fps: int = FPS) -> np.ndarray:
    """`speech` `(L,)` rescaled, frame by frame, to the power of `reference` `(L,)` under each video frame
    (`frame_energy`), the gain interpolated between frame centres so no step clicks: the same loudness
    contour with other sounds. The gain is capped (`MAX_MATCHING_GAIN`) where `speech` is near silent."""
    speech = np.asarray(speech, np.float64)
    frames = int(np.ceil(len(speech) * fps / rate))
    own, wanted = frame_energy(speech, rate, frames, fps), frame_energy(reference, rate, frames, fps)
    gain = np.minimum(np.exp((wanted - own) / 2), MAX_MATCHING_GAIN)
    centres = (np.arange(frames) + 0.5) * rate / fps
    return (speech * np.interp(np.arange(len(speech)), centres, gain)).astype(np.float32)


def landmark_opening(marks: np.ndarray) -> float:
    """Inner-lip gap over mouth width for one `(68, 2)` landmark set."""
    gap = np.mean([np.linalg.norm(marks[a] - marks[b]) for a, b in INNER_LIP_PAIRS])
    width = np.linalg.norm(marks[MOUTH_CORNERS[0]] - marks[MOUTH_CORNERS[1]])
    return float(gap / max(width, 1e-6))


def mouth_box(real_marks: list, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel box `(x0, y0, x1, y1)` around the mouth: the median real landmarks' mouth points, widened by a
    quarter; the aligned-crop default when no real frame has landmarks. `size`: (H, W)."""
    found = [m for m in real_marks if m is not None]
    height, width = size
    if not found:
        x0, y0, x1, y1 = DEFAULT_MOUTH_BOX
        return int(x0 * width), int(y0 * height), int(np.ceil(x1 * width)), int(np.ceil(y1 * height))
    points = np.median(np.stack(found), axis=0)[MOUTH_POINTS]
    (left, top), (right, bottom) = points.min(0), points.max(0)
    pad_x, pad_y = 0.25 * (right - left), 0.25 * (bottom - top) + 1
    return (
        int(max(0, left - pad_x)),
        int(max(0, top - pad_y)),
        int(min(width, np.ceil(right + pad_x))),
        int(min(height, np.ceil(bottom + pad_y))),
    )


def region_luminance(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Luminance (0–255) of the box `(x0, y0, x1, y1)` in `(T, H, W, 3)` uint8 frames, `(T, h, w)`."""
    x0, y0, x1, y1 = box
    return frames[:, y0:y1, x0:x1].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def region_opening(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Darkness of the mouth region per frame, `(T,)`: 1 − mean luminance in [0, 1]."""
    return 1.0 - region_luminance(frames, box).reshape(len(frames), -1).mean(1) / 255.0


def landmarks_found(marks: list) -> bool:
    """Whether dlib found the face in enough of a clip's frames (`LANDMARK_SHARE`) to use landmarks."""
    return len(marks) > 1 and float(np.mean([m is not None for m in marks])) >= LANDMARK_SHARE


def opening_series(
    frames: np.ndarray, marks: list, box: tuple[int, int, int, int], landmarks: bool
) -> np.ndarray:
    """Mouth opening per frame: by landmarks (misses interpolated) when `landmarks`, else by the region's
    darkness. A clip's generated, real and control frames are measured the same way (`landmarks` true only
    when every one of them has `landmarks_found`), so the real frames' r is a ceiling on the same scale."""
    if not landmarks:
        return region_opening(frames, box)
    found = np.array([m is not None for m in marks])
    values = np.array([landmark_opening(m) if m is not None else np.nan for m in marks])
    times = np.arange(len(values))
    return np.interp(times, times[found], values[found])


def lagged_correlations(mouth: np.ndarray, energy: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """Pearson r of mouth[t + k] with energy[t] for k = −max_lag…max_lag, `(2·max_lag + 1,)`. A mouth that
    never moves while the speech varies scores 0 (it follows nothing); NaN where the speech is constant or
    fewer than 3 frames overlap."""
    out = np.full(2 * max_lag + 1, np.nan)
    for index, lag in enumerate(range(-max_lag, max_lag + 1)):
        a = mouth[max(lag, 0) : len(mouth) + min(lag, 0)]
        b = energy[max(-lag, 0) : len(energy) - max(lag, 0)]
        length = min(len(a), len(b))
        a, b = a[:length], b[:length]
        if length >= 3 and b.std() > 1e-9:
            out[index] = float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-9 else 0.0
    return out


@dataclass
class SpeechDependence:
    """Accumulates the video checks clip by clip; `compute()` → (values, {metric: why not computed})."""

    detect: Callable[[np.ndarray], np.ndarray | None]
    profiles: dict[str, list[np.ndarray]] = field(default_factory=dict)
    sums: dict[str, list[float]] = field(default_factory=dict)

    def _add(self, key: str, value: float) -> None:
        if np.isfinite(value):
            self.sums.setdefault(key, []).append(float(value))

    def update(
        self,
        generated: np.ndarray,
        real: np.ndarray,
        speech: np.ndarray,
        rate: int,
        control: np.ndarray | None = None,
        silent: np.ndarray | None = None,
        generated_marks: list | None = None,
        real_marks: list | None = None,
    ) -> None:
        """One clip: `(T, H, W, 3)` uint8 generated and real frames, their `(L,)` speech at `rate`, and the
        clip generated from another clip's speech (`control`) and from silence (`silent`), when made."""
        length = min(len(generated), len(real))
        if length < 3:
            return
        generated, real = generated[:length], real[:length]
        generated_marks = generated_marks[:length] if generated_marks else [self.detect(f) for f in generated]
        real_marks = real_marks[:length] if real_marks else [self.detect(f) for f in real]
        box = mouth_box(real_marks, real.shape[1:3])
        energy = frame_energy(speech, rate, length)
        control = control[:length] if control is not None else None
        control_marks = [self.detect(f) for f in control] if control is not None else []
        landmarks = all(landmarks_found(m) for m in (generated_marks, real_marks, control_marks) if m)
        self._add("mouth_landmark_share", float(landmarks))
        self._profile(
            "generated",
            lagged_correlations(opening_series(generated, generated_marks, box, landmarks), energy),
        )
        self._profile("real", lagged_correlations(opening_series(real, real_marks, box, landmarks), energy))
        found = np.array([m is not None for m in real_marks])
        if found.sum() >= 3:  # the region measure checked against landmarks on the real frames
            by_marks = np.array([landmark_opening(m) for m in real_marks if m is not None])
            self._add(
                "mouth_region_validity_r",
                lagged_correlations(region_opening(real[found], box), by_marks, 0)[0],
            )
        real_region = region_pixels(real, box)
        real_motion = float(np.abs(real_region - real_region.mean(0)).mean())
        if control is not None:
            control_mouth = opening_series(control, control_marks, box, landmarks)
            self._profile("control", lagged_correlations(control_mouth, energy))
            change = float(np.abs(region_pixels(generated, box) - region_pixels(control, box)).mean())
            self._add("mouth_swap_sensitivity", change / max(real_motion, 1e-6))
        if silent is not None:  # the region measure on both sides, like against like; ties count half
            speaking, quiet = np.median(region_opening(generated, box)), region_opening(silent[:length], box)
            self._add(
                "silence_mouth_closed", float(np.mean(quiet < speaking) + 0.5 * np.mean(quiet == speaking))
            )

    def _profile(self, name: str, profile: np.ndarray) -> None:
        self.profiles.setdefault(name, []).append(profile)

    def compute(self) -> tuple[dict[str, float], dict[str, str], dict[str, list[float]]]:
        """Values, reasons for what is missing, and the mean lag profile of each input (lags −5…+5)."""
        values = {key: float(np.mean(v)) for key, v in self.sums.items()}
        missing, lag_profiles = {}, {}
        for name, key in (
            ("generated", "speech_mouth_r"),
            ("real", "speech_mouth_r_real"),
            ("control", "speech_mouth_r_control"),
        ):
            stacked = np.array(self.profiles.get(name, []))
            if not len(stacked) or np.all(np.isnan(stacked[:, MAX_LAG])):
                missing[key] = "no clip of ≥ 3 frames with varying speech"
                continue
            mean = np.nanmean(stacked, axis=0)
            lag_profiles[name] = [round(float(v), 4) for v in mean]
            values[key] = float(mean[MAX_LAG])
            if np.nanmax(mean) - np.nanmin(mean) > 1e-9:  # a flat profile (a still mouth) has no peak
                values[f"{key}_peak_lag"] = float(np.nanargmax(mean) - MAX_LAG)
        for key in ("mouth_swap_sensitivity", "speech_mouth_r_control"):
            if key not in values:
                missing.setdefault(key, "no control clip (generated from another clip's speech) was made")
        if "silence_mouth_closed" not in values:
            missing["silence_mouth_closed"] = "no clip was generated from silence"
        return values, missing, lag_profiles


def region_pixels(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The mouth region of each frame as floats in [0, 1], `(T, h, w, 3)`."""
    x0, y0, x1, y1 = box
    return frames[:, y0:y1, x0:x1].astype(np.float32) / 255.0


def identity_retrieval(
    generated: torch.Tensor, reference: torch.Tensor, real: list[torch.Tensor]
) -> dict[str, float]:
    """Recall@1 of speaker identity for faces generated from held-out speech, with its chance, control and
    real-face ceiling.

    generated: `(N, D)` unit embeddings, row i of faces made from speaker i's speech; reference: `(N, D)`
        unit embeddings of the speakers' real faces; real: per speaker `(M_i, D)` embeddings of single real
        faces (the ceiling retrieves each one against the reference built from the speaker's other faces).
    The control scores the faces generated from speaker i+1's speech as speaker i's (speech of another
    speaker), the value a model reaches when its faces ignore the voice.
    """
    count = len(reference)

    def recall(queries: torch.Tensor, references: torch.Tensor) -> float:
        return float((queries @ references.T).argmax(1).eq(torch.arange(len(queries))).float().mean())

    values = {
        "speech_identity_r@1": recall(generated, reference),
        "speech_identity_r@1_chance": 1.0 / count,
        "speech_identity_r@1_control": recall(generated.roll(-1, 0), reference),
    }
    hits = []
    for speaker, faces in enumerate(real):
        for index in range(len(faces)) if len(faces) > 1 else []:
            others = torch.cat([faces[:index], faces[index + 1 :]]).mean(0)
            references = reference.clone()
            references[speaker] = torch.nn.functional.normalize(others, dim=0)
            hits.append(int((faces[index] @ references.T).argmax()) == speaker)
    if hits:
        values["speech_identity_r@1_real"] = float(np.mean(hits))
    return values
