"""Generate from your own files:
`python -m experiments.infer EXP --ckpt CKPT --audio A.wav --image F.jpg --out O.mp4`.

What `make infer EXP=… CKPT=… AUDIO=… IMAGE=… OUT=…` runs. The model comes from the checkpoint and the
preprocessing from the stage's saved config, so your inputs are treated as the training data was:

- audio: any format PyAV or soundfile reads, any sample rate, any channel count, any length; it is
  mixed to mono and resampled to the model's rate;
- image: any RGB/RGBA/greyscale picture holding a face; the face is detected and aligned as in the
  dataset's preprocessing (E2E-NR: dlib landmarks, similarity to the template; TCSAN: the square dlib box;
  A2V: the MTCNN box, then inverted into the generator);
- output: an H.264 mp4 at the model's frame rate with your audio muxed in. Systems that make one face
  from speech (Wav2Pix, SF2F) need no image and write a PNG instead: one face per audio file, several
  files side by side in one grid (`--audio a.wav b.wav c.wav`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from datamodules.errors import command_errors
from datamodules.pipeline.files import atomic_path, atomic_write_csv
from experiments.checkpoints import load_model, resolve_checkpoint
from experiments.configs import ExperimentError
from experiments.path_lists import read_path_list
from lightning_modules.common.contracts import FaceSystem, VideoSystem

MUX_SAMPLE_RATE = 16000  # the audio written into the mp4: the input resampled to a rate every player handles
MIN_SPEECH_SECONDS = 0.04  # one video frame at 25 fps


def read_speech(path: str, sample_rate: int):
    """The speech file as mono float32 at `sample_rate`, refusing less than one frame's worth."""
    from datamodules.pipeline.audio import read_audio

    speech = read_audio(path, sample_rate)
    if len(speech) < MIN_SPEECH_SECONDS * sample_rate:
        raise ExperimentError(
            f"{path}: {len(speech) / sample_rate * 1000:.0f} ms of audio, less than one video frame "
            f"({MIN_SPEECH_SECONDS * 1000:.0f} ms). Pass AUDIO=<a longer recording>."
        )
    return speech


def read_face_image(path: Path) -> np.ndarray:
    """Any picture → `(H, W, 3)` uint8 RGB, upright as its EXIF tag says (`open_rgb`)."""
    from PIL import UnidentifiedImageError

    from datamodules.errors import DatasetError
    from datamodules.pipeline.images import open_rgb

    try:
        return np.asarray(open_rgb(path))
    except FileNotFoundError:
        raise DatasetError(f"{path}: image not found. Pass IMAGE=<a picture of a face>.") from None
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(
            f"{path}: not a readable image ({error}). Pass IMAGE=<a JPEG or PNG of a face>."
        ) from None


def align_face(image: np.ndarray, data_args: dict, path: Path) -> np.ndarray:
    """Detect and crop/align the face as the datamodule's preprocessing did → `(S, S, 3)` uint8."""
    from datamodules.pipeline.face_tracks import FaceCropConfig, track_faces
    from datamodules.pipeline.faces import LandmarkPredictor, build_detector

    # The minimum face size filters training clips (A2V's 200 px); a user's photo is used whatever its size.
    crop = dataclasses.replace(FaceCropConfig(**(data_args.get("crop") or {})), min_face_px=0)
    size = int(data_args.get("image_size", 128))
    predictor = LandmarkPredictor() if crop.landmarks else None
    track = track_faces(image[None], crop, size, build_detector(crop.detector), predictor, str(path))
    return track.crops[0]


def load_generator(experiment: str, checkpoint: str):
    """(model in eval mode, the datamodule arguments it was trained with); the model makes faces
    (`face_from_speech`) or video (`synthesise_chunks`)."""
    model, config, _ = load_model(experiment, resolve_checkpoint(experiment, checkpoint))
    if not isinstance(model, FaceSystem | VideoSystem):
        raise ExperimentError(f"{type(model).__name__} generates neither video nor faces from speech.")
    return model.eval(), config["data"].get("init_args") or {}


def infer(
    experiment: str,
    checkpoint: str,
    audio: str | list[str],
    image: str | None,
    out: str | None,
    chunk_frames: int | None = None,
) -> Path:
    """The output of `experiment`'s `checkpoint` for `audio` (and `image`, video systems) at `out`; without
    `out`, `out.png` for a face system and `out.mp4` for a video system."""
    model, data_args = load_generator(experiment, checkpoint)
    audios = [audio] if isinstance(audio, str) else list(audio)
    if isinstance(model, FaceSystem):
        return write_faces(model, audios, Path(out or "out.png"))
    out = out or "out.mp4"
    if len(audios) != 1:
        raise ExperimentError(f"{experiment} makes one video from one speech file; got {len(audios)}.")
    return write_video(model, data_args, audios[0], image, Path(out), chunk_frames, progress=True)


def write_video(
    model,
    data_args: dict,
    audio: str,
    image: str | None,
    target: Path,
    chunk_frames: int | None,
    progress: bool,
) -> Path:
    """The talking-face mp4 of `audio` and the face in `image`, with the audio muxed in."""
    if not image:
        raise ExperimentError(f"{type(model).__name__} animates a face: pass IMAGE=<picture of a face>.")
    speech = read_speech(audio, model.speech_rate)
    face = align_face(read_face_image(Path(image)), data_args, Path(image))
    frames = speaking_video(model, speech, face, audio, target, chunk_frames, progress)
    print(
        f"[infer] wrote {target}: {frames} frames at 25 fps, "
        f"{len(speech) / model.speech_rate:.2f} s of audio",
        file=sys.stderr,
    )
    return target


def speaking_video(
    model,
    speech: np.ndarray,
    face: np.ndarray,
    audio: str,
    target: Path,
    chunk_frames: int | None = None,
    progress: bool = False,
) -> int:
    """Write `model`'s video of the aligned `face` saying `speech` (at the model's rate) to `target`, with the
    sound of the file `audio` muxed in → the frames written.

    The chunks go to the encoder as they are made, so memory stays bounded whatever the speech's length
    (`python -m benchmarks.infer_memory`). `chunk_frames` None keeps the system's own default.
    """
    from datamodules.pipeline.audio import read_audio
    from datamodules.pipeline.video_writer import write_mp4

    chunking = {"chunk_frames": chunk_frames} if chunk_frames else {}
    counted = FrameCounter(model.synthesise_chunks(speech, face, progress=progress, **chunking))
    write_mp4(target, counted, fps=25, audio=read_audio(audio, MUX_SAMPLE_RATE), sample_rate=MUX_SAMPLE_RATE)
    return counted.frames


class FrameCounter:
    """Iterates over video chunks `(t, H, W, 3)`, counting their frames in `frames`."""

    def __init__(self, chunks: Iterable[np.ndarray]):
        self.chunks, self.frames = chunks, 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for chunk in self.chunks:
            self.frames += len(chunk)
            yield chunk


def infer_batch(
    experiment: str, checkpoint: str, pairs: str, out_dir: str, chunk_frames: int | None = None
) -> Path:
    """One output per row of the CSV `pairs` (header `audio,image`; face systems need only `audio`; relative
    paths are taken from the CSV's folder), with the model loaded once. Writes `index.csv` (row, inputs,
    output, seconds) and, for rows that fail on their input, `errors.csv` (row, inputs, the error) without
    stopping the batch; returns `out_dir`."""
    import time

    from tqdm.auto import tqdm

    from datamodules.errors import ProjectError

    model, data_args = load_generator(experiment, checkpoint)
    rows = read_pairs(Path(pairs), needs_image=not isinstance(model, FaceSystem))
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    done, failed = [], []
    for number, audio, image in tqdm(rows, desc=f"[infer] {Path(pairs).name}", unit="row"):
        started = time.perf_counter()
        try:
            if isinstance(model, FaceSystem):
                target = write_faces(model, [audio], folder / f"{number:05d}_{Path(audio).stem}.png")
            else:
                target = write_video(
                    model,
                    data_args,
                    audio,
                    image,
                    folder / f"{number:05d}_{Path(audio).stem}.mp4",
                    chunk_frames,
                    progress=False,
                )
        except ProjectError as error:
            failed.append({"row": number, "audio": audio, "image": image, "error": str(error)})
            continue
        done.append(
            {
                "row": number,
                "audio": audio,
                "image": image,
                "output": target.name,
                "seconds": f"{time.perf_counter() - started:.2f}",
            }
        )
    for name, records, columns in (
        ("index.csv", done, ["row", "audio", "image", "output", "seconds"]),
        ("errors.csv", failed, ["row", "audio", "image", "error"]),
    ):
        if records or name == "index.csv":
            atomic_write_csv(folder / name, columns, records)
    print(
        f"[infer] {len(done)} of {len(rows)} rows written to {folder}"
        + (f"; {len(failed)} failed, listed in {folder / 'errors.csv'}" if failed else ""),
        file=sys.stderr,
    )
    return folder


def read_pairs(path: Path, needs_image: bool) -> list[tuple[int, str, str]]:
    """(row number from 1, audio path, image path or "") of each data row of the batch CSV."""
    import csv

    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            records = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ExperimentError(
            f"{path}: cannot read the batch list ({error}). Write a CSV with a header row."
        ) from None
    wanted = ["audio", "image"] if needs_image else ["audio"]
    if not set(wanted) <= set(columns):
        raise ExperimentError(f"{path}: needs the column(s) {wanted} in its header row, found {columns}.")
    if not records:
        raise ExperimentError(f"{path}: the batch list holds no row.")

    def located(value: str | None) -> str:
        return str(path.parent / value.strip()) if value and value.strip() else ""

    return [
        (number, located(record["audio"]), located(record.get("image")))
        for number, record in enumerate(records, start=1)
    ]


def write_faces(model, audios: list[str], out: Path) -> Path:
    """One face per speech file → a PNG (a grid, in the order given, for several files)."""
    import torch
    import torchvision
    from tqdm.auto import tqdm

    faces = [
        model.face_from_speech(read_speech(a, model.speech_rate))
        for a in tqdm(audios, desc="faces", unit="file")
    ]
    if out.suffix.lower() != ".png":
        out = out.with_suffix(".png")
        print(f"[infer] {type(model).__name__} makes faces, not video: writing {out}", file=sys.stderr)
    images = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).float() / 255.0
    grid = torchvision.utils.make_grid(
        images, nrow=min(8, len(faces)), padding=2 if len(faces) > 1 else 0, pad_value=1.0
    )
    with atomic_path(out) as partial:
        torchvision.utils.save_image(grid, partial, format="png")
    print(f"[infer] wrote {out}: {len(faces)} face(s), {faces[0].shape[0]} px", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.infer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", help="experiment name (experiments/<name>.yaml)")
    parser.add_argument("--ckpt", default="last", help="checkpoint, stage/run folder or 'last' (default)")
    parser.add_argument(
        "--audio",
        nargs="+",
        default=[],
        help="speech file (wav, flac, mp3, m4a, mp4, …); face systems take several, one face each",
    )
    parser.add_argument("--image", help="picture of the face to animate (video systems)")
    parser.add_argument(
        "--out",
        help="output .mp4 (video systems; default out.mp4) or .png (face systems; default out.png); "
        "with --list, the output folder (default infer_out)",
    )
    parser.add_argument(
        "--chunk-frames",
        type=int,
        help="frames generated per chunk, each written as soon as it is made (default: the system's own)",
    )
    parser.add_argument("--audio-list", help="a text file listing speech files, one per line (face systems)")
    parser.add_argument(
        "--list",
        help="batch: a CSV with columns audio,image (face systems: audio), one output per "
        "row into the folder --out, the model loaded once",
    )
    args = parser.parse_args(argv)
    with command_errors(audio="AUDIO"):
        if args.list:
            infer_batch(args.experiment, args.ckpt, args.list, args.out or "infer_out", args.chunk_frames)
            return
        audio = args.audio + (read_path_list(args.audio_list) if args.audio_list else [])
        if not audio:
            parser.error("give --audio or --audio-list")
        infer(args.experiment, args.ckpt, audio, args.image, args.out, args.chunk_frames)


if __name__ == "__main__":
    main()
