"""Preparing whole datasets: what `make prepare` costs per clip and per stage, and the hours it would take
for each real dataset on one 16-core machine, with and without a GPU for face detection.

    python -m benchmarks.prepare_scale [--cases lrw grid_tcsan …] [--clips 8] [--cores 16] [--json out.json]

Each case is a dataset layout with the preprocessing parameters of the experiment that trains on it
(`experiments/<name>.yaml`, as `make prepare DATASET=… EXP=…` takes them). On the generated demo dataset
of that layout, the work of one cache entry (`talking_face_clips.clip_item`, `voice_face.face_item` /
`speech_item`, `face_speech.pair_item`) is re-run one stage at a time on the same `--clips` files, in this
one process with one torch thread, so the sum is the cost per core:

- decode: the video (PyAV, with the frame-rate check and conversion) and the audio (read, resampled,
  trimmed to the frames), or the image and the wav;
- detection: the face detector on the frames the crop configuration detects on (every frame, or every
  `detect_every`-th and the last); Wav2Pix's dlib check of each face crop;
- landmarks: dlib's 68 points (every frame with a face for template alignment, every frame for box crops);
- crop: everything else `track_faces` does (template warps or square crops, box tracking);
- features: MFCCs (TCSAN), voice-activity detection + log-mel (SF2F); none for the others;
- writing: `ShardedCache.write_shard` of the entries, in shards of the size `make prepare` uses.

After each file's stages, `clip_item` (or the other job function) runs whole on it, under the same load:
"stages / job function" (writing left out, which the job function does not do) near 1 shows that the
stages account for all its work.

The projection scales the measured costs to the real clips: per frame for decoding (times the ratio of
real to demo pixels: decoding cost grows with the pixels), landmarks, crops, features and writing; per
detected frame for detection, measured on the demo frames upscaled to the real frame size (the detectors'
cost depends on it: dlib downscales frames wider than 640 px, MTCNN's image pyramid grows with the
pixels). Clip counts, lengths and frame sizes are assumptions stated in `REAL` with their sources. Hours
on N cores assume N worker processes scale linearly (`make prepare ARGS="--workers N"`), disk and memory
bandwidth not limiting. With a GPU (projected, not measured: no GPU here), detection runs as batched MTCNN
at the throughput facenet-pytorch reports for a P100 (`GPU_MTCNN_FPS`), shared by all workers, overlapped
with the CPU stages: hours = max(CPU stages / N cores, detected frames / GPU throughput). "GPU fps to
gain" is the detection throughput above which a GPU beats the N cores at detecting (for LRW, GRID and
TCD-TIMIT the GPU would also mean MTCNN in place of dlib's detector, which changes the boxes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.timing import table
from datamodules.errors import DatasetError, command_errors
from datamodules.pipeline.files import atomic_write_text

STAGES = ("decode", "detection", "landmarks", "crop", "features", "writing")


@dataclass(frozen=True)
class Case:
    """One dataset layout prepared with one experiment's parameters."""

    dataset: str  # experiments.prepare's dataset name
    experiment: str
    kind: str  # "clips" (talking-face video), "faces", "speech" (SF2F) or "pairs" (Wav2Pix)


CASES = {
    "lrw": Case("lrw", "e2e_nr", "clips"),
    "grid_e2e_nr": Case("grid", "e2e_nr_grid", "clips"),
    "grid_tcsan": Case("grid", "tcsan", "clips"),
    "tcd_timit": Case("tcd_timit", "tcsan_tcd", "clips"),
    "avspeech": Case("avspeech", "a2v", "clips"),
    "avspeech_360p": Case("avspeech", "a2v", "clips"),
    "hq_voxceleb_faces": Case("hq_voxceleb", "sf2f", "faces"),
    "hq_voxceleb_speech": Case("hq_voxceleb", "sf2f", "speech"),
    "youtubers": Case("youtubers", "wav2pix", "pairs"),
}


@dataclass(frozen=True)
class Real:
    """The real dataset as the projection assumes it: `items` cache entries (clips, images, utterances or
    pairs) of `frames` video frames of `width`×`height` pixels (`seconds` of speech for utterances)."""

    items: int
    source: str
    frames: float = 0.0
    width: int = 0
    height: int = 0
    seconds: float = 0.0


LRW_CLIPS = 488_766 + 25_000 + 25_000
REAL = {
    "lrw": Real(
        LRW_CLIPS,
        "Chung & Zisserman 2016: 488,766 train + 25,000 val + 25,000 test clips of 29 frames "
        "(1.16 s at 25 fps), 256×256",
        frames=29,
        width=256,
        height=256,
    ),
    "grid_e2e_nr": Real(
        33_000,
        "GRID: 34 speakers × 1,000 sentences, s21 without video → 33,000 videos of 75 frames (3 s), 360×288",
        frames=75,
        width=360,
        height=288,
    ),
    "tcd_timit": Real(
        59 * 98,
        "TCD-TIMIT: 59 volunteers × 98 sentences (the 3 lip-speakers are not read), straightcam 1920×1080 "
        "at 29.97 fps; ≈ 3.1 s per sentence assumed (TIMIT's mean: 5.4 h / 6,300 sentences) → 93 frames",
        frames=93,
        width=1920,
        height=1080,
    ),
    "avspeech": Real(
        2_600_000,
        "AVSpeech: 4,700 h in 3–10 s segments of 290k videos; ≈ 2.6M segments assumed (4,700 h / 6.5 s, the "
        "middle of 3–10 s), 25 fps after conversion → 162 frames; frames of 1280×720 (720p) assumed",
        frames=162.5,
        width=1280,
        height=720,
    ),
    "hq_voxceleb_faces": Real(
        3_600 * 50,
        "HQ-VoxCeleb: ≈ 3,600 identities (2,890 train in sf2f.yaml = 80 % by the split rule); 50 face "
        "images per identity assumed (not stated in docs/), about the demo's size",
    ),
    "hq_voxceleb_speech": Real(
        3_600 * 170,
        "VoxCeleb1+2 speech of ≈ 3,600 identities: ≈ 170 utterances each (VoxCeleb1 153,516 / 1,251 = 123, "
        "VoxCeleb2 1,128,246 / 6,112 = 185) of ≈ 8 s (VoxCeleb1 352 h / 153,516 = 8.2 s)",
        seconds=8.0,
    ),
    "youtubers": Real(
        42_000,
        "Wav2Pix's Youtubers: 62 youtubers, ≈ 42,000 face–speech pairs (the paper's cleaned set, as quoted "
        "in the project's issue; not restated in docs/); crops about the demo's 200–290 px",
    ),
}
REAL["grid_tcsan"] = REAL["grid_e2e_nr"]
REAL["avspeech_360p"] = Real(
    REAL["avspeech"].items,
    "the same AVSpeech segments with frames of 640×360 (360p), the low end of YouTube's common sizes",
    frames=REAL["avspeech"].frames,
    width=640,
    height=360,
)

# facenet-pytorch's README: batched MTCNN on a P100, frames/s by frame size (W, H). Smaller frames are
# assumed to go proportionally faster than the 540p figure (optimistic); none of this is measured here.
GPU_MTCNN_FPS = {(1920, 1080): 12.97, (1280, 720): 20.32, (960, 540): 25.50}


def gpu_detection_fps(width: int, height: int) -> float:
    """Projected frames/s of batched MTCNN on one GPU for frames of this size."""
    pixels = width * height
    sizes = sorted(GPU_MTCNN_FPS, key=lambda s: s[0] * s[1])
    smallest = sizes[0][0] * sizes[0][1]
    if pixels <= smallest:
        return GPU_MTCNN_FPS[sizes[0]] * smallest / pixels
    known = [(s[0] * s[1], GPU_MTCNN_FPS[s]) for s in sizes]
    for (p0, f0), (p1, f1) in zip(known, known[1:]):
        if pixels <= p1:
            return f0 + (f1 - f0) * (pixels - p0) / (p1 - p0)
    return known[-1][1] * known[-1][0] / pixels


# ----------------------------------------------------------------------------- measuring one entry


class _Stopwatch:
    """Seconds per stage, summed over the entries measured."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def time(self, stage: str, work, *args, **kwargs):
        started = time.perf_counter()
        result = work(*args, **kwargs)
        self.seconds[stage] += time.perf_counter() - started
        return result


class _Replay:
    """A detector that hands back detections made earlier (so `track_faces` is timed without them)."""

    batched = True

    def __init__(self, faces):
        self.faces = faces

    def detect_batch(self, images):
        return self.faces


class _TimedLandmarks:
    """The landmark predictor, timing its calls into the "landmarks" stage."""

    def __init__(self, predictor, watch: _Stopwatch):
        self.predictor, self.watch = predictor, watch

    def __call__(self, image, box):
        return self.watch.time("landmarks", self.predictor, image, box)


def _upscaled(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """The frames scaled to `height` rows (aspect kept) and cropped or edge-padded to `width` columns."""
    from PIL import Image

    if frames.shape[1:3] == (height, width):
        return frames
    scale = height / frames.shape[1]
    side = round(frames.shape[2] * scale)
    out = np.stack([np.asarray(Image.fromarray(f).resize((side, height), Image.BILINEAR)) for f in frames])
    if side >= width:
        left = (side - width) // 2
        return np.ascontiguousarray(out[:, :, left : left + width])
    pad = width - side
    return np.pad(out, ((0, 0), (0, 0), (pad // 2, pad - pad // 2), (0, 0)), mode="edge")


class ClipStages:
    """`clip_item`'s work on one clip, a stage at a time; also its detection cost at another frame size."""

    def __init__(self):
        from datamodules.pipeline.faces import LandmarkPredictor

        self.detectors, self.predictor = {}, LandmarkPredictor()

    def detector(self, name: str):
        from datamodules.pipeline.faces import build_detector

        if name not in self.detectors:
            self.detectors[name] = build_detector(name)
        return self.detectors[name]

    def run(self, job: dict, watch: _Stopwatch) -> tuple[dict, dict]:
        from datamodules.pipeline.face_tracks import FaceCropConfig, detection_frames
        from datamodules.pipeline.faces import detect_many
        from datamodules.pipeline.features import MfccConfig, mfcc
        from datamodules.talking_face_clips import _checked_audio, _checked_video

        video = watch.time("decode", _checked_video, job)
        wave = watch.time("decode", _checked_audio, job, len(video.frames), video.fps)
        crop = FaceCropConfig(**job["crop"])
        every = 1 if crop.method == "template" else crop.detect_every
        where = detection_frames(len(video.frames), every)
        detector = self.detector(crop.detector)
        faces = watch.time("detection", detect_many, detector, video.frames[where])
        track = self._track(video.frames, crop, job, faces, watch)
        arrays = {"frames": track.crops, "audio": wave, "detected": track.detected}
        if track.landmarks is not None:
            arrays["landmarks"] = track.landmarks
        if job["mfcc"] is not None:
            arrays["mfcc"] = watch.time("features", mfcc, wave, MfccConfig(**job["mfcc"]))
        return {"key": job["key"], "frames": len(video.frames), "size": video.frames.shape[1:3]}, arrays

    def _track(self, frames: np.ndarray, crop, job: dict, faces: list, watch: _Stopwatch):
        """`track_faces` with the detections already made: its landmark calls go to "landmarks", the
        rest of its time to "crop"."""
        from datamodules.pipeline.face_tracks import track_faces

        landmarks_before = watch.seconds["landmarks"]
        predictor = _TimedLandmarks(self.predictor, watch)
        started = time.perf_counter()
        track = track_faces(
            frames,
            crop,
            job["image_size"],
            _Replay(faces),
            predictor if crop.landmarks or crop.method == "template" else None,
            job["path"],
            job["face_hint"],
        )
        landmarks = watch.seconds["landmarks"] - landmarks_before
        watch.seconds["crop"] += time.perf_counter() - started - landmarks
        return track

    def per_frame_at(self, job: dict, width: int, height: int) -> dict[str, float]:
        """Seconds per detected frame of detection, and per frame of landmarks and of cropping, on the
        clip's frames upscaled to `width`×`height`."""
        from datamodules.pipeline.face_tracks import FaceCropConfig, detection_frames
        from datamodules.pipeline.faces import detect_many
        from datamodules.talking_face_clips import _checked_video

        frames = _upscaled(_checked_video(job).frames, width, height)
        crop = FaceCropConfig(**job["crop"])
        where = detection_frames(len(frames), 1 if crop.method == "template" else crop.detect_every)
        watch = _Stopwatch()
        faces = watch.time("detection", detect_many, self.detector(crop.detector), frames[where])
        self._track(frames, crop, job, faces, watch)
        return {
            "detection": watch.seconds["detection"] / len(where),
            "landmarks": watch.seconds["landmarks"] / len(frames),
            "crop": watch.seconds["crop"] / len(frames),
        }


def face_stages(job: dict, watch: _Stopwatch) -> tuple[dict, dict]:
    """`voice_face.face_item`: read and resize the face image."""
    from datamodules.pipeline.images import read_image

    face = watch.time("decode", read_image, job["path"], job["image_size"])
    return {"identity": job["identity"], "path": job["path"]}, {"face": face[None]}


def speech_stages(job: dict, watch: _Stopwatch) -> tuple[dict, dict]:
    """`voice_face.speech_item`: read the utterance, keep its voiced parts, log-mel."""
    from datamodules.pipeline.audio import read_audio, voiced_audio
    from datamodules.pipeline.features import LogMelConfig, log_mel

    config = LogMelConfig(**job["log_mel"])
    wave = watch.time("decode", read_audio, job["path"], config.sample_rate)
    seconds = len(wave) / config.sample_rate
    if job["vad"]:
        wave = watch.time("features", voiced_audio, wave, config.sample_rate)
    features = watch.time("features", log_mel, wave, config)
    meta = {"identity": job["identity"], "path": job["path"], "seconds": seconds}
    return meta, {"mel": features.T.astype(np.float16)}


def pair_stages(job: dict, watch: _Stopwatch) -> tuple[dict, dict]:
    """`face_speech.pair_item`: the face crop (read, dlib check, resize) and its speech."""
    from PIL import Image

    from datamodules.face_speech import _DETECTOR
    from datamodules.pipeline.audio import read_audio
    from datamodules.pipeline.images import read_image

    face = watch.time("decode", read_image, job["path"], None).transpose(1, 2, 0)
    if job["swap_red_blue"]:
        face = face[..., ::-1]
    face = np.ascontiguousarray(face)
    if job["check_face"] and not watch.time("detection", _DETECTOR, face):
        raise DatasetError(f"{job['path']}: no face")
    size = job["image_size"]
    resize = lambda f: np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR))  # noqa: E731
    face = watch.time("crop", resize, face).transpose(2, 0, 1)
    wave = watch.time("decode", read_audio, job["audio"], job["sample_rate"])
    return {"identity": job["identity"], "path": job["path"]}, {"face": face[None], "audio": wave}


# ----------------------------------------------------------------------------- the cases


def datamodule_for(case: Case, size: str = "demo"):
    """The case's datamodule on the generated dataset of `size`, with its experiment's data arguments."""
    from experiments.configs import make_datamodule, stacked_section, stage_configs
    from experiments.prepare import DATASETS, experiment_data_args

    class_path = DATASETS[case.dataset]
    if case.experiment == "a2v":  # A2V's datamodule extends AVSpeech's: keep the clip arguments
        _, found = stacked_section(stage_configs("a2v", demo=False, smoke=False), "data")
        kwargs = {k: found[k] for k in ("split", "image_size", "fps", "sample_rate", "crop") if k in found}
    else:
        kwargs = experiment_data_args(case.experiment, class_path)
    kwargs.update(root=None, demo_size=size, prepare_workers=0, num_workers=0)
    return make_datamodule(class_path, kwargs)


def case_jobs(case: Case, datamodule) -> tuple[list[dict], object, int]:
    """(jobs as `prepare_data` makes them, the job function, the shard size it is written with)."""
    if case.kind == "clips":
        from datamodules.talking_face_clips import clip_item

        return datamodule.jobs(), clip_item, 32
    if case.kind == "pairs":
        from datamodules.face_speech import pair_item

        return [{**pair, **datamodule._preprocessing()} for pair in datamodule.pairs], pair_item, 256
    from datamodules.voice_face import face_item, speech_item

    hp = datamodule.hparams
    if case.kind == "faces":
        jobs = [
            {"path": str(p), "identity": i.name, "image_size": hp.image_size}
            for i in datamodule.identities
            for p in i.faces
        ]
        return jobs, face_item, 256
    jobs = [
        {
            "path": str(p),
            "identity": i.name,
            "log_mel": asdict(datamodule.log_mel_config),
            "vad": hp.vad,
            "min_speech_seconds": hp.min_speech_seconds,
        }
        for i in datamodule.identities
        for p in i.speech
    ]
    return jobs, speech_item, 256


def _spread(jobs: list[dict], count: int) -> list[dict]:
    """`count` jobs evenly spread over the list (every split and speaker, not the first folder only)."""
    step = max(1, len(jobs) // count)
    return jobs[::step]


def measure_case(name: str, count: int, size: str = "demo") -> dict:
    """Per-entry seconds of every stage on `count` usable demo files, the end-to-end rate on the same files,
    and (video) the detection and landmark + crop cost per frame at the real frame size."""
    from datamodules.pipeline.cache import ShardedCache

    case = CASES[name]
    datamodule = datamodule_for(case, size)
    jobs, process, shard_size = case_jobs(case, datamodule)
    stages = ClipStages() if case.kind == "clips" else None
    run = (
        stages.run
        if stages
        else {"faces": face_stages, "speech": speech_stages, "pairs": pair_stages}[case.kind]
    )
    _warm_up(run, process, jobs)
    watch, items, used, whole = _Stopwatch(), [], [], 0.0
    for job in _spread(jobs, count * 2):
        if len(items) == count:
            break
        trial = _Stopwatch()
        try:
            item = run(job, trial)
        except DatasetError:
            continue  # a deliberately broken demo file: prepare rejects it too
        started = time.perf_counter()  # the job function right after, under the same load
        process(job)
        whole += time.perf_counter() - started
        items.append(item)
        used.append(job)
        for stage, seconds in trial.seconds.items():
            watch.seconds[stage] += seconds
    with tempfile.TemporaryDirectory() as folder:
        cache = ShardedCache(folder, {"benchmark": name})
        shards = [items[i : i + shard_size] for i in range(0, len(items), shard_size)]
        for number, shard in enumerate(shards):
            padded = (shard * (shard_size // len(shard) + 1))[:shard_size]  # a full shard, as prepare writes
            started = time.perf_counter()
            cache.write_shard(number, padded, [])
            watch.seconds["writing"] += (time.perf_counter() - started) * len(shard) / shard_size
    result = {
        "case": name,
        "dataset": case.dataset,
        "experiment": case.experiment,
        "entries": len(used),
        "per_entry_s": {stage: seconds / len(used) for stage, seconds in watch.seconds.items()},
        "job_function_s": whole / len(used),
    }
    if case.kind == "clips":
        frames = [meta["frames"] for meta, _ in items]
        height, width = items[0][0]["size"]
        crop = datamodule.crop_config
        result.update(
            frames=statistics.mean(frames),
            width=int(width),
            height=int(height),
            crop={"method": crop.method, "detector": crop.detector, "detect_every": crop.detect_every},
        )
        real, per = REAL[name], result["per_entry_s"]
        if (real.width, real.height) == (width, height):  # the demo frames have the real size already
            detected = detection_frames_per_clip(result["frames"], crop.method, crop.detect_every)
            result["real_per_frame_s"] = {
                "detection": per["detection"] / detected,
                "landmarks": per["landmarks"] / result["frames"],
                "crop": per["crop"] / result["frames"],
            }
        else:
            probes = [stages.per_frame_at(job, real.width, real.height) for job in used[:3]]
            result["real_per_frame_s"] = {k: statistics.mean(p[k] for p in probes) for k in probes[0]}
    if case.kind == "speech":
        result["seconds"] = statistics.mean(meta["seconds"] for meta, _ in items)
    return result


def _warm_up(run, process, jobs: list[dict]) -> None:
    """Load the models and libraries (once per worker in `make prepare`) outside the timing, for the stage
    runner and for the job function, which holds its own (the first job function call took 3× the rest)."""
    for job in jobs:
        try:
            run(job, _Stopwatch())
            process(job)
            return
        except DatasetError:
            continue


# ----------------------------------------------------------------------------- projecting


def detection_frames_per_clip(frames: float, method: str, every: int) -> float:
    return frames if method == "template" or every == 1 else np.ceil(frames / every) + 1


def project(result: dict, cores: int) -> dict:
    """Seconds per real entry per core by stage, and hours for the whole dataset on `cores` cores, CPU only
    and with GPU detection."""
    name, per = result["case"], result["per_entry_s"]
    real = REAL[name]
    if "frames" not in result:  # images, utterances, pairs: per entry (utterances: per second of speech)
        scale = real.seconds / result["seconds"] if real.seconds else 1.0
        seconds = {
            stage: per[stage] * (scale if stage in ("decode", "features") else 1.0) for stage in STAGES
        }
        cpu_hours = real.items * sum(seconds.values()) / cores / 3600
        return {"real_s": seconds, "cpu_hours": cpu_hours, "gpu_hours": float("nan")}
    crop, at_real = result["crop"], result["real_per_frame_s"]
    real_detected = detection_frames_per_clip(real.frames, crop["method"], crop["detect_every"])
    pixels = real.width * real.height / (result["width"] * result["height"])
    frame_scale = real.frames / result["frames"]
    seconds = {
        "decode": per["decode"] * frame_scale * pixels,
        "detection": at_real["detection"] * real_detected,
        "landmarks": at_real["landmarks"] * real.frames,
        "crop": at_real["crop"] * real.frames,
        "features": per["features"] * frame_scale,
        "writing": per["writing"] * frame_scale,
    }
    cpu_seconds = sum(seconds.values())
    cpu_hours = real.items * cpu_seconds / cores / 3600
    gpu_fps = gpu_detection_fps(real.width, real.height)
    other = real.items * (cpu_seconds - seconds["detection"]) / cores
    gpu_hours = max(other, real.items * real_detected / gpu_fps) / 3600
    return {
        "real_s": seconds,
        "real_detected": real_detected,
        "break_even_fps": cores * real_detected / seconds["detection"],
        "pixels": pixels,
        "cpu_hours": cpu_hours,
        "gpu_hours": gpu_hours,
        "gpu_fps": gpu_fps,
        "gpu_bound": real.items * real_detected / gpu_fps > other,
    }


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1000
    return f"{milliseconds:.1f}" if milliseconds < 10 else f"{milliseconds:,.0f}"


def _s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 1 else f"{seconds:.2f}"


def _entry(case: str, frames, width, height, seconds) -> str:
    """What one cache entry is: a clip's frames and size, an utterance's seconds, a face, a pair."""
    if frames:
        return f"{frames:.0f} frames {width}×{height}"
    kind = CASES[case].kind
    if kind == "speech":
        return f"utterance of {seconds:.1f} s"
    return "face image" if kind == "faces" else "face crop + speech"


def report(results: list[dict], cores: int) -> str:
    measured = []
    for r in results:
        per = r["per_entry_s"]
        total = sum(per.values())
        clip = _entry(r["case"], r.get("frames"), r.get("width"), r.get("height"), r.get("seconds"))
        measured.append(
            {
                "case": r["case"],
                "experiment": r["experiment"],
                "entry": clip,
                **{f"{stage} ms": _ms(per[stage]) for stage in STAGES},
                "total ms": _ms(total),
                "entries/s per core": 1 / total,
                "job function entries/s": 1 / r["job_function_s"],
                "stages / job function": (total - per["writing"]) / r["job_function_s"],
            }
        )
    projected = []
    for r in results:
        p = project(r, cores)
        real = REAL[r["case"]]
        size = _entry(r["case"], real.frames, real.width, real.height, real.seconds)
        projected.append(
            {
                "case": r["case"],
                "entries assumed": f"{real.items:,}",
                "entry": size,
                "detected frames": f"{p['real_detected']:g}" if "real_detected" in p else "",
                **{f"{stage} s": _s(p["real_s"][stage]) for stage in STAGES},
                f"CPU h ({cores} cores)": p["cpu_hours"],
                "GPU det. h (projected)": p["gpu_hours"],
                "GPU fps assumed": p.get("gpu_fps", float("nan")),
                "GPU fps to gain": p.get("break_even_fps", float("nan")),
            }
        )
    columns_m = [
        "case",
        "experiment",
        "entry",
        *[f"{s} ms" for s in STAGES],
        "total ms",
        "entries/s per core",
        "job function entries/s",
        "stages / job function",
    ]
    columns_p = [
        "case",
        "entries assumed",
        "entry",
        "detected frames",
        *[f"{s} s" for s in STAGES],
        f"CPU h ({cores} cores)",
        "GPU det. h (projected)",
        "GPU fps assumed",
        "GPU fps to gain",
    ]
    sources = "\n".join(f"- {r['case']}: {REAL[r['case']].source}" for r in results)
    return (
        "Measured on the demo data (one process, one torch thread; ms per entry):\n\n"
        + table(measured, columns_m)
        + "\n\nProjected for the real datasets (seconds per entry per core at the real size; hours on "
        + f"{cores} cores):\n\n"
        + table(projected, columns_p)
        + "\n\nAssumed sizes:\n"
        + sources
        + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.prepare_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--clips", type=int, default=8, help="demo files measured per case")
    parser.add_argument("--cores", type=int, default=16, help="cores of the machine projected to")
    parser.add_argument("--size", default="demo", help="generated dataset size (demo, or tiny for tests)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # one worker of `make prepare` per core
    results = []
    for name in args.cases:
        started = time.perf_counter()
        results.append(measure_case(name, args.clips, args.size))
        print(f"{name}: measured in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))
    print(report(results, args.cores))


if __name__ == "__main__":
    with command_errors():
        main()
