"""The shared metrics of every system, computed the same way from generated and real samples.

Each system turns its test split into `GeneratedSample`s (its `evaluation_samples`); `MetricSuite` scores
them all with one implementation per metric, and says for every metric it could not compute why not
(missing weights, an image system without frame-aligned ground truth, too few identities):

- psnr, ssim, l1: pixels vs frame-aligned ground truth (`video_metrics`; L1 on [0, 1]); needs: paired samples
- lpips: LPIPS v0.1, VGG (`pretrained/lpips_distance`); needs: `lpips_backbone`
- fid, kid: Inception-v3 pool features, generated vs real frames (`distribution`); needs:
  `fid_inception_weights` (TF-Inception) or `inception_weights`
- lmd_mouth, lmd_face: landmark distance, mouth points 48–67 / all 68, template pixels (`video_metrics`);
  needs: paired
- landmark_failure_rate: frames where dlib finds no face on either side; needs: paired
- face_detection_rate: generated frames in which dlib's HOG detector finds a face; needs: —
- identity_cosine, identity_recall@K: face embeddings of generated vs real faces of the speaker (`metrics`);
  needs: FaceNet weights, else dlib's model
- cpbd, cpbd_real: sharpness of generated (and real) frames (`sharpness`); needs: —
- au_f1, au_accuracy: five AUs from landmark geometry, generated vs real frames (`action_units`); needs:
  paired video
- lse_d, lse_c (+ _real): SyncNet lip-sync distance / confidence (`lip_sync`); needs: `syncnet_weights`,
  speech
- fvd: Fréchet distance of I3D features, generated vs real 16-frame windows, as StyleGAN-V computes it
  (`video_distance`); needs: `i3d_weights`, paired clips of ≥ 16 frames
- csim: cosine of ArcFace embeddings, each generated frame vs its speaker's real reference
  (`face_similarity`); needs: `arcface_weights`
- speech_mouth_r (+ _real, _control), mouth_swap_sensitivity, silence_mouth_closed: does the mouth follow the
  speech (`speech_dependence`); needs: video, speech (controls: made by the system)
- speech_identity_r@1 (+ _chance, _control, _real): identity from held-out speech (`speech_dependence`);
  needs: faces of ≥ 2 speakers

The expensive image metrics (LPIPS, FID/KID, identity, CSIM, CPBD, detection) look at `frames_per_clip` evenly
spaced frames of each clip; pixels, landmarks, AUs and lip sync at every frame.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import WeightsError
from .identity_metrics import recall_at_k
from .label_scores import BinaryLabelScores
from .lip_shape import KEYS as LIP_SHAPE_KEYS
from .lip_shape import LipShapeScores
from .speech_dependence import SpeechDependence, identity_retrieval
from .video_metrics import FrameLandmarks, VideoMetricAccumulator

WEIGHTS_DIR_VARIABLE = "TF_WEIGHTS_DIR"
# Where `MetricSettings.from_folder` looks: the file names the weights are released under.
STANDARD_FILES = {
    "lpips_backbone": "vgg16-397923af.pth",
    "fid_inception_weights": "pt_inception-2015-12-05-6726825d.pth",
    "inception_weights": "inception_v3_google-0cc3c7bd.pth",
    "syncnet_weights": "syncnet_v2.model",
    "facenet_weights": "20180402-114759-vggface2.pt",
    "i3d_weights": "i3d_torchscript.pt",
    "arcface_weights": "w600k_r50.onnx",
}
RECALL_KS = (1, 2, 5, 10)
LIP_SHAPE_NOTE = (
    "mouth-region shape against the clip's recorded true mouth, Pearson r per clip, mean over clips; "
    "partial_r removes what speech energy explains; validity: region against landmarks (lip_shape.py)"
)
# Every metric the suite reports: each ends up with a value or with the reason it has none.
REPORTED = (
    "psnr",
    "ssim",
    "l1",
    "lpips",
    "fid",
    "kid",
    "lmd_mouth",
    "lmd_face",
    "landmark_failure_rate",
    "face_detection_rate",
    "identity_cosine",
    "cpbd",
    "cpbd_real",
    "au_f1",
    "au_accuracy",
    "lse_d",
    "lse_c",
    "fvd",
    "csim",
)
# Speech dependence: the mouth checks of video systems, the identity check of face systems.
VIDEO_DEPENDENCE = (
    "speech_mouth_r",
    "speech_mouth_r_real",
    "speech_mouth_r_control",
    "mouth_swap_sensitivity",
    "silence_mouth_closed",
)
FACE_DEPENDENCE = (
    "speech_identity_r@1",
    "speech_identity_r@1_chance",
    "speech_identity_r@1_control",
    "speech_identity_r@1_real",
)


@dataclass
class GeneratedSample:
    """One generated clip (or face) beside its ground truth.

    generated: `(T, H, W, 3)` uint8 RGB; T = 1 for a face generated from speech.
    real: `(T', H, W, 3)` uint8 RGB: the clip's own frames when `paired` (frame t against frame t), else
        real faces of the same identity (SF2F: other photos of the speaker).
    identity: the speaker, for identity retrieval.
    speech: `(L,)` float32 at `sample_rate`, aligned with frame 0 (the clean speech when the input was noisy).
    control, silent: video systems only, `(T, H, W, 3)` uint8: the same clip generated from another clip's
        speech and from silence (the speech-dependence controls).
    matched: the same clip generated from another clip's speech rescaled to this clip's per-frame loudness
        (the lip-shape measure's energy-matched control), when the clip records its mouth.
    true_mouth: the clip's true (opening, width) per frame `(T,)`, when its data records them (generated
        with the `lips` articulation): scored by `lip_shape.py`.
    control_speech: `(L,)` the other clip's speech `control` was generated from (fitted to this clip's
        length), so the control can be played with the speech that drove it (`report_clips.py`).
    speech_to_hear: face systems (whose input is not a waveform to play): reads back, at `sample_rate`, the
        speech the face was made from, called only by what plays it (`report_clips.py`), so that no metric
        and no other sample pays for reading it.
    """

    generated: np.ndarray
    real: np.ndarray
    identity: str
    speech: np.ndarray | None = None
    sample_rate: int = 16000
    paired: bool = True
    control: np.ndarray | None = None
    silent: np.ndarray | None = None
    matched: np.ndarray | None = None
    true_mouth: tuple[np.ndarray, np.ndarray] | None = None
    control_speech: np.ndarray | None = None
    speech_to_hear: Callable[[], np.ndarray] | None = None

    def audible_speech(self) -> np.ndarray | None:
        """The speech to play beside the output: `speech`, else what `speech_to_hear` reads back."""
        if self.speech is not None or self.speech_to_hear is None:
            return self.speech
        return self.speech_to_hear()


@dataclass(frozen=True)
class MetricSettings:
    """Weights the optional metrics need (None: that metric is reported as not computed) and effort.

    allow_random: build random stand-ins for missing weights (tests only: the numbers then mean nothing).
    """

    lpips_backbone: str | None = None
    fid_inception_weights: str | None = None  # TF-Inception (pytorch-fid's file): FID comparable with papers
    inception_weights: str | None = (
        None  # torchvision's Inception: the fallback when the file above is absent
    )
    syncnet_weights: str | None = None
    facenet_weights: str | None = None
    i3d_weights: str | None = None  # StyleGAN-V's I3D TorchScript: FVD
    arcface_weights: str | None = None  # insightface's ArcFace ONNX: CSIM
    landmarks: bool = True
    frames_per_clip: int = 8
    allow_random: bool = False

    @classmethod
    def from_folder(cls, folder: str | None = None, **overrides) -> MetricSettings:
        """Settings with every weights file found under its released name in `folder` (default
        `$TF_WEIGHTS_DIR`), then `overrides` (explicit paths win)."""
        folder = folder or os.environ.get(WEIGHTS_DIR_VARIABLE)
        found = {}
        if folder:
            found = {
                key: str(Path(folder) / name)
                for key, name in STANDARD_FILES.items()
                if (Path(folder) / name).is_file()
            }
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise WeightsError(f"unknown metric setting(s) {unknown}; known: {sorted(known)}")
        return cls(**{**found, **overrides})


class MetricSuite:
    """Feed `GeneratedSample`s with `update`; `compute()` → (values, {metric: why it was not computed})."""

    def __init__(self, settings: MetricSettings = MetricSettings()):
        self.settings = settings
        self.missing: dict[str, str] = {}
        self.lpips = self._optional(("lpips",), self._build_lpips)
        self.features = self._optional(("fid", "kid"), self._build_features)
        self.syncnet = self._optional(("lse_d", "lse_c"), self._build_syncnet)
        self.fvd = self._optional(("fvd",), self._build_fvd)
        self.csim = self._optional(("csim",), self._build_csim)
        self.embedder, self.embedder_name = self._build_embedder()
        self.pixels = VideoMetricAccumulator(landmarks=settings.landmarks, detect=FrameLandmarks())
        self.action_units = BinaryLabelScores(5)
        self.speech_dependence = SpeechDependence(detect=self.pixels.detect)
        self.lip_shape = LipShapeScores(detect=self.pixels.detect)
        self.lag_profiles: dict[str, list[float]] = {}
        self.identity_check: dict[str, float] = {}
        self.sums: dict[str, list[float]] = {}
        self.embeddings: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.paired = self.unpaired = 0

    # --- building -------------------------------------------------------------------------------------

    def _optional(self, keys: tuple[str, ...], build):
        try:
            return build()
        except WeightsError as error:
            for key in keys:
                self.missing[key] = str(error)
            return None

    def _build_lpips(self):
        from ..pretrained.lpips_distance import build_lpips

        return build_lpips("vgg", self.settings.lpips_backbone, allow_random=self.settings.allow_random)

    def _build_features(self):
        from .distribution import TF_INCEPTION, TORCHVISION_INCEPTION, FeatureDistance, load_inception

        tf_path, torchvision_path = self.settings.fid_inception_weights, self.settings.inception_weights
        variant = TORCHVISION_INCEPTION if torchvision_path and not tf_path else TF_INCEPTION
        self.inception_note = variant.note
        return FeatureDistance(
            load_inception(tf_path or torchvision_path, variant, self.settings.allow_random)
        )

    def _build_syncnet(self):
        from .lip_sync import load_syncnet

        return load_syncnet(self.settings.syncnet_weights, allow_random=self.settings.allow_random)

    def _build_fvd(self):
        from ..pretrained.i3d import HOW_TO_GET, I3D_FILE, load_i3d
        from .video_distance import FrechetVideoDistance

        if self.settings.i3d_weights is None:
            raise WeightsError(f"FVD needs the I3D network ({I3D_FILE}, setting i3d_weights): {HOW_TO_GET}.")
        return FrechetVideoDistance(load_i3d(self.settings.i3d_weights))

    def _build_csim(self):
        from ..pretrained.arcface import ARCFACE_FILE, HOW_TO_GET, load_arcface
        from .face_similarity import ArcFaceSimilarity

        if self.settings.arcface_weights is None:
            raise WeightsError(f"CSIM needs ArcFace ({ARCFACE_FILE}, setting arcface_weights): {HOW_TO_GET}.")
        return ArcFaceSimilarity(load_arcface(self.settings.arcface_weights))

    def _build_embedder(self):
        from ..pretrained.face_embedding import build_face_embedder

        if self.settings.facenet_weights:
            return build_face_embedder("facenet", self.settings.facenet_weights), "FaceNet VGGFace2"
        return build_face_embedder("dlib"), "dlib ResNet (offline proxy; not FaceNet)"

    # --- accumulation ---------------------------------------------------------------------------------

    def _add(self, key: str, value: float) -> None:
        if value is not None and math.isfinite(value):
            self.sums.setdefault(key, []).append(float(value))

    @torch.no_grad()
    def update(self, sample: GeneratedSample) -> None:
        generated, real = _checked(sample.generated, "generated"), _checked(sample.real, "real")
        picks_generated, picks_real = (
            _spread(len(generated), self.settings.frames_per_clip),
            _spread(len(real), self.settings.frames_per_clip),
        )
        if sample.paired:
            length = min(len(generated), len(real))
            marks = self._paired_metrics(
                generated[:length], real[:length], _spread(length, self.settings.frames_per_clip)
            )
            if sample.speech is not None and length > 1:
                self.speech_dependence.update(
                    generated[:length],
                    real[:length],
                    sample.speech,
                    sample.sample_rate,
                    sample.control,
                    sample.silent,
                    *marks,
                )
            if sample.speech is not None and sample.true_mouth is not None:
                sets = {
                    "": generated[:length],
                    "_real": real[:length],
                    "_control": sample.control,
                    "_matched": sample.matched,
                }
                self.lip_shape.update(sample.true_mouth, sample.speech, sample.sample_rate, sets, marks[1])
            if self.fvd is not None:
                self.fvd.update(generated[:length], real[:length])
        else:
            self.unpaired += 1
        self._image_metrics(generated[picks_generated], real[picks_real], sample.identity)
        if sample.speech is not None and self.syncnet is not None:
            self._lip_sync(generated, real if sample.paired else None, sample.speech, sample.sample_rate)

    def _paired_metrics(self, generated: np.ndarray, real: np.ndarray, picks: np.ndarray) -> tuple:
        """Pixel, landmark and AU metrics of one paired clip; returns its (generated, real) landmarks (None
        each when landmarks are off)."""
        from datamodules.talking_face_windows import to_unit_range

        self.paired += 1
        marks_real = marks_generated = None
        if self.settings.landmarks:
            detect = self.pixels.detect
            marks_real, marks_generated = [detect(f) for f in real], [detect(f) for f in generated]
        self.pixels.update(generated, real, real_landmarks=marks_real, generated_landmarks=marks_generated)
        self._add("l1", float(np.abs(generated.astype(np.float32) - real.astype(np.float32)).mean() / 255.0))
        if self.lpips is not None:
            distance = self.lpips(to_unit_range(generated[picks]), to_unit_range(real[picks]))
            self._add("lpips", float(distance.mean()))
        if marks_real is not None and len(generated) > 1:
            self._action_units(marks_generated, marks_real)
        return marks_generated, marks_real

    def _action_units(self, generated_marks: list, real_marks: list) -> None:
        from datamodules.pipeline.action_units import GeometryLabels

        labeler = GeometryLabels()
        labels = []
        for marks in (generated_marks, real_marks):
            detected = np.array([m is not None for m in marks])
            points = np.zeros((len(marks), 68, 2))
            if detected.any():
                points[detected] = np.stack([m for m in marks if m is not None])
            labels.append(labeler.labels("sample", points, detected))
        (predicted, predicted_valid), (target, target_valid) = labels
        both = predicted_valid & target_valid
        self.action_units.update(predicted[both], target[both])

    def _image_metrics(self, generated: np.ndarray, real: np.ndarray, identity: str) -> None:
        from .sharpness import cpbd

        detect = self.pixels.detect.detector
        self._add(
            "face_detection_rate", float(np.mean([bool(detect(np.ascontiguousarray(f))) for f in generated]))
        )
        self._add(
            "face_detection_rate_real", float(np.mean([bool(detect(np.ascontiguousarray(f))) for f in real]))
        )
        self._add("cpbd", _nanmean([cpbd(f) for f in generated]))
        self._add("cpbd_real", _nanmean([cpbd(f) for f in real]))
        if self.features is not None:
            self.features.update(_channels_first(generated), real=False)
            self.features.update(_channels_first(real), real=True)
        embed = lambda frames: F.normalize(self.embedder(_imagenet(frames)).float().mean(0), dim=0)  # noqa: E731
        self.embeddings.setdefault(identity, []).append((embed(generated).cpu(), embed(real).cpu()))
        if self.csim is not None:
            self.csim.update(generated, real, identity)

    def _lip_sync(
        self, generated: np.ndarray, real: np.ndarray | None, speech: np.ndarray, rate: int
    ) -> None:
        from datamodules.pipeline.audio import resample

        from .lip_sync import SAMPLE_RATE, lip_sync_error

        speech16 = resample(speech, rate, SAMPLE_RATE)
        for suffix, frames in (("", generated), ("_real", real)):
            if frames is None:
                continue
            try:
                score = lip_sync_error(self.syncnet, frames, speech16)
            # too short to score: left out (compute() says so when no clip was long enough)
            except ValueError:
                continue
            self._add(f"lse_d{suffix}", score.distance)
            self._add(f"lse_c{suffix}", score.confidence)

    # --- results --------------------------------------------------------------------------------------

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        values = {key: float(np.mean(v)) for key, v in self.sums.items()}
        missing = dict(self.missing)
        if self.paired:
            pixels = self.pixels.compute()
            # Frames equal to their ground truth have no finite PSNR and are skipped from the mean; when
            # every frame is (a perfect reconstruction), the answer is +inf rather than "no value".
            identical = pixels["frames"] > 0 and pixels["psnr_skipped_frames"] == pixels["frames"]
            values.update(psnr=math.inf if identical else pixels["psnr"], ssim=pixels["ssim"])
            if self.settings.landmarks:
                values.update(
                    lmd_mouth=pixels["nlmd_mouth"],
                    lmd_face=pixels["nlmd_all"],
                    landmark_failure_rate=pixels["landmark_failure_rate"],
                )
                self._compute_action_units(values, missing)
            else:
                for key in ("lmd_mouth", "lmd_face", "au_f1", "au_accuracy"):
                    missing[key] = "landmarks switched off (landmarks=false)"
        else:
            why = "no frame-aligned ground truth: the real faces are other pictures of the speaker"
            for key in ("psnr", "ssim", "l1", "lpips", "lmd_mouth", "lmd_face", "au_f1", "au_accuracy"):
                missing.setdefault(key, why)
        if self.features is not None:
            distribution, why_not = self.features.compute()
            values.update(distribution)
            missing.update(why_not)
        self._compute_identity(values, missing)
        self._compute_video_and_face_similarity(values, missing)
        self._compute_speech_dependence(values, missing)
        if self.syncnet is not None and "lse_d" not in values:
            missing["lse_d"] = missing["lse_c"] = (
                "no sample had speech and at least 6 frames (image systems have no video)"
            )
        for key in ("cpbd", "cpbd_real"):
            if key not in values:
                missing[key] = (
                    "no frame had a 64×64 block with enough edges to measure (frames under 64 px, as the "
                    "reference CPBD scores whole blocks only, or flat images)"
                )
        for key in REPORTED:
            if key not in values and key not in missing:
                missing[key] = "no sample gave a value"
        return values, missing

    def _compute_video_and_face_similarity(self, values: dict, missing: dict) -> None:
        if self.csim is not None:
            csim, why_not = self.csim.compute()
            values.update(csim)
            missing.update(why_not)
        if self.fvd is None:
            return
        if not self.paired:
            missing["fvd"] = "no video: FVD compares 16-frame clips and this system makes single faces"
            return
        fvd, why_not = self.fvd.compute()
        values.update(fvd)
        missing.update(why_not)

    def _compute_speech_dependence(self, values: dict, missing: dict) -> None:
        video_values, video_missing, self.lag_profiles = self.speech_dependence.compute()
        # video: the face comes from the input frame, the mouth from speech
        if self.speech_dependence.profiles:
            values.update(video_values)
            missing.update({k: v for k, v in video_missing.items() if k not in values})
            lip_values, lip_missing = self.lip_shape.compute()
            values.update(lip_values)
            missing.update(lip_missing)
            why = (
                "a video system: its identity comes from the input face, not the speech (see speech_mouth_r)"
            )
            missing.update({key: why for key in FACE_DEPENDENCE})
            return
        why = "no video clip with speech: a face system (its check is speech_identity_r@1)"
        missing.update({key: why for key in (*VIDEO_DEPENDENCE, *LIP_SHAPE_KEYS)})
        values.update(self.identity_check)
        if self.identity_check and "speech_identity_r@1_real" not in values:
            missing["speech_identity_r@1_real"] = "the real-face ceiling needs ≥ 2 samples of a speaker"
        why = missing.get("identity_recall", "no faces were embedded")
        for key in FACE_DEPENDENCE:
            if key not in values:
                missing.setdefault(key, why)

    def _compute_action_units(self, values: dict, missing: dict) -> None:
        if self.action_units.counts.sum() == 0:
            missing["au_f1"] = missing["au_accuracy"] = (
                "no frame with landmarks on both sides (or single frames)"
            )
            return
        mean = self.action_units.compute(("AU10", "AU14", "AU20", "AU25", "AU26"))["mean"]
        values.update(au_f1=mean["f1"], au_accuracy=mean["accuracy"])

    def _compute_identity(self, values: dict, missing: dict) -> None:
        names = sorted(self.embeddings)
        pairs = [(i, g, r) for i, name in enumerate(names) for g, r in self.embeddings[name]]
        if not pairs:
            return
        reference = torch.stack(
            [F.normalize(torch.stack([r for _, r in self.embeddings[n]]).mean(0), dim=0) for n in names]
        )
        values["identity_cosine"] = float(np.mean([float(g @ reference[i]) for i, g, _ in pairs]))
        if len(names) < 2:
            missing["identity_recall"] = f"retrieval needs ≥ 2 identities, had {len(names)}"
            return
        generated = torch.stack(
            [F.normalize(torch.stack([g for g, _ in self.embeddings[n]]).mean(0), dim=0) for n in names]
        )
        ks = tuple(k for k in RECALL_KS if k < len(names)) or (1,)
        for k, recall in recall_at_k(generated, reference, ks=ks).items():
            values[f"identity_recall@{k}"] = recall
        values["identities"] = float(len(names))
        real_faces = [torch.stack([F.normalize(r, dim=0) for _, r in self.embeddings[n]]) for n in names]
        self.identity_check = identity_retrieval(generated, reference, real_faces)

    def notes(self) -> dict[str, str]:
        """What a reader needs to interpret a metric's value."""
        lags = "; lag profile −5…+5 frames: " + ", ".join(f"{k}: {v}" for k, v in self.lag_profiles.items())
        inception = self.inception_note
        return {
            "fvd": "I3D (Kinetics-400, StyleGAN-V's TorchScript port) features of consecutive 16-frame "
            "windows (fvd_clips per side), generated vs real; StyleGAN-V's scaling and covariance",
            "csim": "ArcFace (insightface w600k_r50) cosine, each sampled generated frame vs the speaker's "
            "real frames' mean embedding; whole frames resized to 112×112 as aligned crops",
            "identity_cosine": f"embedding: {self.embedder_name}",
            "fid": inception,
            "kid": inception,
            "speech_mouth_r": "Pearson r, mouth opening vs speech energy per frame, lag 0" + lags,
            "speech_mouth_r_control": "generated from another clip's speech, scored against this clip's",
            **{key: LIP_SHAPE_NOTE for key in LIP_SHAPE_KEYS},
            "speech_identity_r@1": f"faces from held-out speech, embedded by {self.embedder_name}",
            "speech_identity_r@1_control": "the same faces scored as another speaker's (speech swapped)",
            "lmd_mouth": "template pixels after similarity alignment",
            "au_f1": "landmark-geometry AU labels",
            "lse_d": "SyncNet, frames resized to 224",
            "cpbd": "Narvekar & Karam 2011, higher is sharper",
        }


def _checked(frames: np.ndarray, name: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"{name} frames must be (T ≥ 1, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}"
        )
    return frames


def _spread(count: int, wanted: int) -> np.ndarray:
    """Up to `wanted` evenly spaced indices of `count` frames."""
    return np.unique(np.linspace(0, count - 1, min(count, max(1, wanted))).round().astype(int))


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _channels_first(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def _imagenet(frames: np.ndarray) -> torch.Tensor:
    from ..images import unit_to_imagenet

    return unit_to_imagenet(_channels_first(frames).float() / 255.0)
