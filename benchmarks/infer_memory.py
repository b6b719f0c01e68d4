"""Peak memory of `make infer` against the length of the speech: it must stay flat as the input grows.

    python -m benchmarks.infer_memory [--systems e2e_nr tcsan] [--minutes 1 10 60] [--width 1.0] [--threads 2]

Each (system, length) runs in a fresh process. The system's module is built with the paper's
configuration (`--width` narrows it, so that an hour of speech runs in minutes on a CPU), in evaluation
mode with channels-last weights as `make infer` loads it, and makes a 1-s warm-up video. Then it takes the
path `make infer` takes once the face is aligned (`experiments.infer.speaking_video`): the speech file read
at the model's rate, frames generated in the system's default chunks and encoded into an mp4 as they come,
the sound resampled and muxed in.

"model" is the process's resident memory after the warm-up; "above model" is the process's peak resident
memory (VmHWM) minus it. The speech is seeded noise in a 16-kHz 16-bit wav: the cost does not depend on
what is said. The target (issue "bounded memory"): 60 minutes within 2 GB above the model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.timing import process_status_kib, table
from datamodules.errors import command_errors

SYSTEMS = ("e2e_nr", "tcsan")
WAV_RATE = 16000
MIB = 1024**2


def write_speech(path: Path, minutes: float) -> None:
    """`minutes` of seeded noise as a 16-bit wav, written a minute at a time."""
    rng = np.random.default_rng(0)
    remaining = int(minutes * 60 * WAV_RATE)
    with sf.SoundFile(path, "w", WAV_RATE, 1, "PCM_16") as wav:
        while remaining:
            block = min(remaining, 60 * WAV_RATE)
            wav.write(np.clip(rng.standard_normal(block) * 0.1, -1, 1).astype(np.float32))
            remaining -= block


def build_module(system: str, width: float):
    """The system's module in evaluation mode, channels-last as `make infer` loads it. The loss weights
    that would need pretrained networks (VGG, the AU classifier) are off: inference does not use them."""
    from experiments.checkpoints import inference_layout

    if system == "e2e_nr":
        from lightning_modules.e2e_nr.module import E2ENRModule

        module = E2ENRModule(width=width)
    else:
        from lightning_modules.tcsan.module import TCSANModule

        module = TCSANModule(width=width, per_weight=0.0, au_weight=0.0)
    return inference_layout(module.eval())


def measure_one(system: str, speech_file: Path, width: float) -> dict:
    """In this process: build, warm up, then one `speaking_video` of `speech_file` → the row."""
    from experiments.infer import read_speech, speaking_video

    module = build_module(system, width)
    rate, size = int(module.hparams.sample_rate), int(module.hparams.image_size)
    face = np.random.default_rng(1).integers(0, 256, (size, size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        warm_up = Path(folder) / "warm_up.wav"
        write_speech(warm_up, 1 / 60)
        speaking_video(module, read_speech(str(warm_up), rate), face, str(warm_up), Path(folder) / "w.mp4")
        model = process_status_kib("VmRSS") * 1024
        started = time.perf_counter()
        speech = read_speech(str(speech_file), rate)
        frames = speaking_video(module, speech, face, str(speech_file), Path(folder) / "out.mp4")
        seconds = time.perf_counter() - started
    peak = process_status_kib("VmHWM") * 1024
    return {"frames": frames, "seconds": seconds, "model": model, "peak": peak}


def measure(system: str, minutes: float, width: float, threads: int) -> dict:
    """One row, measured in a fresh process so that its peak is this input's alone."""
    with tempfile.TemporaryDirectory() as folder:
        speech_file = Path(folder) / "speech.wav"
        write_speech(speech_file, minutes)
        command = [sys.executable, "-m", "benchmarks.infer_memory", "--one", system, str(speech_file)]
        command += ["--width", str(width), "--threads", str(threads)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
        )
    if done.returncode:
        raise RuntimeError(f"{system}, {minutes:g} min: the measuring process failed:\n{done.stderr[-2000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "system": system,
        "width": width,
        "minutes": minutes,
        "frames": row["frames"],
        "seconds": row["seconds"],
        "RTF": row["frames"] / 25 / row["seconds"],
        "model MiB": round(row["model"] / MIB),
        "peak MiB": round(row["peak"] / MIB),
        "above model MiB": round((row["peak"] - row["model"]) / MIB),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.infer_memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--minutes", nargs="+", type=float, default=[1.0, 10.0, 60.0])
    parser.add_argument("--width", type=float, default=1.0, help="channel width factor (1 = the paper's)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--one", nargs=2, metavar=("SYSTEM", "WAV"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure_one(args.one[0], Path(args.one[1]), args.width)))
        return
    rows = [measure(s, m, args.width, args.threads) for s in args.systems for m in args.minutes]
    print(
        f"make infer's peak memory against speech length (CPU, {args.threads} threads, width {args.width:g})"
    )
    columns = ["system", "width", "minutes", "frames", "seconds", "RTF", "model MiB", "peak MiB"]
    print(table(rows, [*columns, "above model MiB"]))


if __name__ == "__main__":
    with command_errors():
        main()
