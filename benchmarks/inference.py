"""Inference real-time factor of the video systems: video seconds generated per wall-clock second.

    python -m benchmarks.inference [--systems e2e_nr tcsan] [--seconds 10] [--threads 2] [--compile]

Each system runs its `synthesise_chunks` (what `make infer` calls: speech features, the generator over the
whole utterance, uint8 frames) at the paper's resolution and width, under `torch.inference_mode`, with
the channels-last weights `make infer` uses, on
`--seconds` of speech and one face crop from the generated fixture. RTF = (frames / 25 fps) / seconds
taken; ≥ 1 is faster than real time. The weights are the randomly initialised ones of the paper
configuration: the same work as trained ones. A2V needs StyleGAN3 and Wav2Vec2 weights for its real
renderer (`--a2v-stylegan3-pkl` with `--a2v-stylegan3-repo`, `--a2v-wav2vec2`); without them its row says so.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.systems import build
from benchmarks.timing import table
from datamodules.errors import command_errors
from lightning_modules.common.contracts import whole_video

FPS = 25
SAMPLE_RATES = {"e2e_nr": 8000, "tcsan": 16000, "a2v": 16000}


def face_crop(batch: dict) -> np.ndarray:
    """The fixture's identity frame `(3, S, S)` in [-1, 1] → `(S, S, 3)` uint8."""
    image = batch["identity"][0].permute(1, 2, 0).numpy()
    return np.clip((image + 1) * 127.5, 0, 255).astype(np.uint8)


def speech(seconds: float, sample_rate: int) -> np.ndarray:
    """Seeded speech-like noise (the generators' cost does not depend on what is said)."""
    return (np.random.default_rng(0).standard_normal(int(seconds * sample_rate)) * 0.1).astype(np.float32)


def real_time_factor(name: str, args: argparse.Namespace) -> dict:
    if name == "a2v":
        return _a2v(args)
    from experiments.checkpoints import inference_layout

    module, batch, *_ = build(name, 1)
    module = inference_layout(module.eval())  # as `make infer` loads it
    if args.compile:
        module.generator.compile()
    face, wave = face_crop(batch), speech(args.seconds, SAMPLE_RATES[name])
    whole_video(module.synthesise_chunks(speech(1.0, SAMPLE_RATES[name]), face))  # warm-up (and compilation)
    started = time.perf_counter()
    frames = whole_video(module.synthesise_chunks(wave, face))
    seconds = time.perf_counter() - started
    return {
        "system": name,
        "resolution": frames.shape[1],
        "frames": len(frames),
        "seconds": seconds,
        "frames/s": len(frames) / seconds,
        "RTF": len(frames) / FPS / seconds,
    }


def _a2v(args: argparse.Namespace) -> dict:
    if not (args.a2v_stylegan3_pkl and args.a2v_wav2vec2):
        return {"system": "a2v", "RTF": "not measured: needs --a2v-stylegan3-pkl and --a2v-wav2vec2 weights"}
    from lightning_modules.a2v.generator import GeneratorConfig
    from lightning_modules.a2v.module import Embed2LatModule
    from lightning_modules.a2v.speech_encoder import SpeechEncoderConfig

    generator = GeneratorConfig(stylegan3_pkl=args.a2v_stylegan3_pkl, stylegan3_repo=args.a2v_stylegan3_repo)
    module = Embed2LatModule(
        speech_encoder=SpeechEncoderConfig(weights=args.a2v_wav2vec2), generator=generator
    ).eval()
    w0 = torch.zeros(1, 16, 512)  # rendering cost does not depend on the identity code
    wave = speech(args.seconds, SAMPLE_RATES["a2v"])
    with torch.inference_mode():
        whole_video(module.render_chunks(speech(1.0, SAMPLE_RATES["a2v"]), w0))
        started = time.perf_counter()
        frames = whole_video(module.render_chunks(wave, w0))
    seconds = time.perf_counter() - started
    return {
        "system": "a2v",
        "resolution": frames.shape[1],
        "frames": len(frames),
        "seconds": seconds,
        "frames/s": len(frames) / seconds,
        "RTF": len(frames) / FPS / seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--systems", nargs="+", choices=sorted(SAMPLE_RATES), default=["e2e_nr", "tcsan", "a2v"]
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the speech to animate")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads (the target is set for 2 cores)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the generator")
    parser.add_argument("--a2v-stylegan3-pkl", help="NVIDIA's StyleGAN3 network pickle for A2V's renderer")
    parser.add_argument(
        "--a2v-stylegan3-repo", help="a clone of NVlabs/stylegan3 (unpickling needs its modules)"
    )
    parser.add_argument(
        "--a2v-wav2vec2", help="Wav2Vec2 weights for A2V (Hugging Face folder or torchaudio state dict)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [real_time_factor(name, args) for name in args.systems]
    print(
        f"Inference on CPU, {args.threads} threads, {args.seconds:g} s of speech (RTF >= 1: faster than real "
        "time; target >= 1 for e2e_nr and tcsan)"
    )
    print(table(rows, ["system", "resolution", "frames", "seconds", "frames/s", "RTF"]))


if __name__ == "__main__":
    with command_errors():
        main()
