"""Frame-level quality of generated talking-face video: PSNR, SSIM and the normalised landmark distance.

Several systems score generated frames against ground-truth frames of the same clip, from a `test_step`
or from an offline evaluation loop, so the metrics live here once, in plain numpy (uint8 frames in,
floats out), with the choices of E2E-NR's evaluation (docs/e2e_nr.md) written down where they are made:

- PSNR is `10·log10(255² / MSE)` over every pixel and channel; a frame equal to its reference (MSE = 0)
  has no finite PSNR and is skipped (NaN here, left out of every mean), never counted as infinity.
- SSIM is Wang et al. (2004) with an 11×11 Gaussian window (σ = 1.5), per channel and averaged.
- NLMD fits each landmark set on its own to the 68-point template with a similarity transform (all 68
  points, no reflection), then measures the mean Euclidean distance between the two aligned sets: over
  the 20 mouth points (the headline number) and over all 68. Units: pixels of the 128-px template. Head
  pose, face size and position thus cancel; only the shape of the face differs.
- dlib can miss the face in a blurry generated frame. Such frames have no NLMD; they are counted and
  reported as a failure rate, because dropping them silently would flatter a system that blurs mouths.

Averages are taken over the frames of a clip, then over clips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from skimage.metrics import structural_similarity

from datamodules.pipeline.faces import MOUTH, DlibDetector, LandmarkPredictor
from datamodules.pipeline.template import E2E_TEMPLATE_68

PEAK = 255.0
Landmarks = np.ndarray  # (68, 2) float (x, y) pixels


# ---------------------------------------------------------------------------------------------------------
# Pixel metrics


def _pair(generated: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Check two uint8 RGB frames or clips of the same shape → `(T, H, W, 3)` each, and whether the input
    was a single frame."""
    generated, real = np.asarray(generated), np.asarray(real)
    if generated.shape != real.shape:
        raise ValueError(f"generated {generated.shape} and real {real.shape} frames differ in shape")
    if generated.ndim not in (3, 4) or generated.shape[-1] != 3:
        raise ValueError(f"frames must be (H, W, 3) or (T, H, W, 3) RGB, got {generated.shape}")
    if generated.dtype != np.uint8 or real.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (0–255), got {generated.dtype} and {real.dtype}")
    single = generated.ndim == 3
    return (generated[None], real[None], True) if single else (generated, real, False)


def _shaped(values: np.ndarray, single: bool) -> np.ndarray | float:
    return float(values[0]) if single else values


def psnr(generated: np.ndarray, real: np.ndarray) -> np.ndarray | float:
    """Peak signal-to-noise ratio in dB, frame by frame.

    Args:
        generated, real: uint8 RGB, `(T, H, W, 3)` or one frame `(H, W, 3)`.
    Returns:
        `(T,)` float64 (a float for one frame). NaN where the frames are identical (MSE = 0): such frames
        are skipped, not counted as infinity; `np.nanmean` and the accumulator leave them out.
    """
    generated, real, single = _pair(generated, real)
    error = generated.astype(np.float64) - real.astype(np.float64)
    mse = (error**2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        values = np.where(mse > 0, 10.0 * np.log10(PEAK**2 / np.where(mse > 0, mse, 1.0)), np.nan)
    return _shaped(values, single)


def ssim(generated: np.ndarray, real: np.ndarray) -> np.ndarray | float:
    """Structural similarity (Gaussian σ = 1.5 window, K1 0.01, K2 0.03, data range 255), per channel and
    averaged, frame by frame.

    Args:
        generated, real: uint8 RGB, `(T, H, W, 3)` or one frame `(H, W, 3)`; sides of at least 11 px.
    Returns:
        `(T,)` float64 in [-1, 1] (a float for one frame); 1 for identical frames.
    """
    generated, real, single = _pair(generated, real)
    values = np.array(
        [
            structural_similarity(
                a,
                b,
                channel_axis=-1,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=PEAK,
            )
            for a, b in zip(generated, real)
        ],
        dtype=np.float64,
    )
    return _shaped(values, single)


# ---------------------------------------------------------------------------------------------------------
# Landmark distance


def similarity_fit(points: np.ndarray, reference: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity taking `points` onto `reference` (Umeyama 1991): rotation, one scale and a
    translation, never a reflection.

    Args:
        points, reference: `(N, 2)` corresponding points, N ≥ 2, `points` not all equal.
    Returns:
        scale, rotation `(2, 2)`, translation `(2,)`, such that `scale * points @ rotation.T + translation`
        is the fit.
    """
    points, reference = np.asarray(points, np.float64), np.asarray(reference, np.float64)
    if points.shape != reference.shape or points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"need two (N, 2) point sets of one shape, got {points.shape} and {reference.shape}")
    mean_p, mean_r = points.mean(axis=0), reference.mean(axis=0)
    centred_p, centred_r = points - mean_p, reference - mean_r
    spread = (centred_p**2).sum() / len(points)
    if spread == 0:
        raise ValueError("all points coincide; no similarity transform can be fitted")
    covariance = centred_r.T @ centred_p / len(points)
    u, singular, vt = np.linalg.svd(covariance)
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])  # a reflection would fit better: forbid it
    rotation = u @ flip @ vt
    scale = float(np.trace(np.diag(singular) @ flip) / spread)
    return scale, rotation, mean_r - scale * rotation @ mean_p


def procrustes_align(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`points` `(N, 2)` moved by the similarity that best fits them onto `reference` `(N, 2)` → `(N, 2)`
    float64, in the reference's coordinates."""
    scale, rotation, translation = similarity_fit(points, reference)
    return scale * np.asarray(points, np.float64) @ rotation.T + translation


def landmark_distance(
    generated_marks: np.ndarray, real_marks: np.ndarray, template: np.ndarray = E2E_TEMPLATE_68
) -> tuple[float, float]:
    """E2E-NR's normalised landmark distance between two 68-point sets of one frame.

    Each set is aligned on its own to `template` (similarity on all 68 points), then the point-wise
    Euclidean distances are averaged.

    Args:
        generated_marks, real_marks: `(68, 2)` (x, y) in any pixel frame; template `(68, 2)`.
    Returns:
        (NLMD over the mouth points 48–67, NLMD over all 68 points), in template pixels.
    """
    distances = np.linalg.norm(
        procrustes_align(generated_marks, template) - procrustes_align(real_marks, template), axis=-1
    )
    return float(distances[MOUTH].mean()), float(distances.mean())


@lru_cache(maxsize=1)
def _dlib_models() -> tuple[DlibDetector, LandmarkPredictor]:
    """One detector and one predictor per process: the predictor's model takes about a second to load."""
    return DlibDetector(upsample=1, max_side=None), LandmarkPredictor()


class FrameLandmarks:
    """dlib's 68 points on one frame: HOG detector (upsample 1, never downscaled; the largest face kept)
    and the 68-point shape predictor, as E2E-NR's evaluation runs them on 128-px aligned frames.

    Instances are cheap: the dlib models are loaded once per process and shared.
    """

    def __init__(self, upsample: int = 1):
        if upsample == 1:
            self.detector, self.predictor = _dlib_models()
        else:
            self.detector, self.predictor = DlibDetector(upsample=upsample, max_side=None), _dlib_models()[1]

    def __call__(self, frame: np.ndarray) -> Landmarks | None:
        """`(H, W, 3)` uint8 RGB → `(68, 2)` float32 (x, y) pixels, or None when no face is found."""
        faces = self.detector(np.ascontiguousarray(frame))
        return self.predictor(frame, faces[0].box) if faces else None


# ---------------------------------------------------------------------------------------------------------
# Accumulation over clips


def _mean(values: Sequence[float]) -> float:
    """Mean of the finite entries; NaN when there is none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


class VideoMetricAccumulator:
    """Collects PSNR, SSIM and NLMD clip by clip and averages them as E2E-NR's evaluation does
    (over the frames of each clip, then over clips).

    Args:
        landmarks: detect landmarks and report NLMD. False skips dlib (much faster); `compute()` then
            has no `nlmd_*` and no `landmark_failure_rate` keys, rather than misleading zeros.
        template: `(68, 2)` points the landmark sets are aligned to (default: E2E-NR's 128-px template;
            scale it with the frames when they are not 128 px, or NLMD is not in template pixels).
        detect: `(H, W, 3)` uint8 → `(68, 2)` or None; default `FrameLandmarks()`.

    `compute()` returns:
        psnr (dB; frames with MSE = 0 left out, their count in `psnr_skipped_frames`), ssim,
        nlmd_mouth and nlmd_all (template pixels; frames where either landmark set is missing left out),
        landmark_failure_rate (those frames / all frames), frames and clips (counts).
        A clip whose every frame was skipped for a metric does not enter that metric's mean; a metric
        with no clip at all is NaN.
    """

    def __init__(
        self,
        landmarks: bool = True,
        template: np.ndarray = E2E_TEMPLATE_68,
        detect: Callable[[np.ndarray], Landmarks | None] | None = None,
    ):
        self.landmarks, self.template = landmarks, np.asarray(template, np.float64)
        self._detect = detect
        self.reset()

    def reset(self) -> None:
        self.clip_values: dict[str, list[float]] = {"psnr": [], "ssim": [], "nlmd_mouth": [], "nlmd_all": []}
        self.frames = self.psnr_skipped = self.landmark_failures = 0

    @property
    def detect(self) -> Callable[[np.ndarray], Landmarks | None]:
        if self._detect is None:
            self._detect = FrameLandmarks()
        return self._detect

    def update(
        self,
        generated_frames: np.ndarray,
        real_frames: np.ndarray,
        real_landmarks: Sequence[Landmarks | None] | None = None,
        generated_landmarks: Sequence[Landmarks | None] | None = None,
    ) -> dict[str, float]:
        """Score one clip.

        Args:
            generated_frames, real_frames: uint8 RGB `(T, H, W, 3)`, frame t against frame t.
            real_landmarks: T entries of `(68, 2)` or None (no face), or a `(T, 68, 2)` array, when the
                ground truth's landmarks are already known (detected once, reused across conditions);
                otherwise they are detected on `real_frames`.
            generated_landmarks: the same for `generated_frames`, when the caller needs them too.
        Returns:
            the clip's own means (same keys as the metrics of `compute()`).
        """
        generated_frames, real_frames, single = _pair(generated_frames, real_frames)
        if single:
            raise ValueError("update() takes one clip (T, H, W, 3); wrap a single frame as frames[None]")
        per_frame_psnr = psnr(generated_frames, real_frames)
        clip = {"psnr": _mean(per_frame_psnr), "ssim": _mean(ssim(generated_frames, real_frames))}
        self.frames += len(generated_frames)
        self.psnr_skipped += int(np.isnan(per_frame_psnr).sum())
        if self.landmarks:
            clip.update(
                self._landmark_means(generated_frames, real_frames, real_landmarks, generated_landmarks)
            )
        for key, value in clip.items():
            self.clip_values[key].append(value)
        return clip

    def _landmark_means(
        self,
        generated_frames: np.ndarray,
        real_frames: np.ndarray,
        real_landmarks: Sequence[Landmarks | None] | None,
        generated_landmarks: Sequence[Landmarks | None] | None,
    ) -> dict[str, float]:
        if real_landmarks is None:
            real_landmarks = [self.detect(frame) for frame in real_frames]
        if generated_landmarks is None:
            generated_landmarks = [self.detect(frame) for frame in generated_frames]
        if not len(real_landmarks) == len(generated_landmarks) == len(real_frames):
            raise ValueError(
                f"{len(real_landmarks)} real and {len(generated_landmarks)} generated landmark sets "
                f"for {len(real_frames)} frames"
            )
        mouth, whole = [], []
        for generated, real in zip(generated_landmarks, real_landmarks):
            if generated is None or real is None:
                self.landmark_failures += 1
                continue
            distance = landmark_distance(generated, real, self.template)
            mouth.append(distance[0])
            whole.append(distance[1])
        return {"nlmd_mouth": _mean(mouth), "nlmd_all": _mean(whole)}

    def compute(self) -> dict[str, float]:
        """Means over clips of the per-clip means; see the class docstring for the keys."""
        result = {"psnr": _mean(self.clip_values["psnr"]), "ssim": _mean(self.clip_values["ssim"])}
        if self.landmarks:
            result["nlmd_mouth"] = _mean(self.clip_values["nlmd_mouth"])
            result["nlmd_all"] = _mean(self.clip_values["nlmd_all"])
            result["landmark_failure_rate"] = (
                self.landmark_failures / self.frames if self.frames else float("nan")
            )
        result.update(
            psnr_skipped_frames=self.psnr_skipped, frames=self.frames, clips=len(self.clip_values["psnr"])
        )
        return result
