"""E2E-NR's evaluation protocol, run by `make eval EXP=e2e_nr CKPT=…`.

The test speech is mixed with each held-out noise type at every SNR of the grid (−10…30 dB), plus clean
speech; for each condition the generated 128-px frames are compared with the aligned ground-truth frames:
PSNR, SSIM and the normalised landmark distance (dlib landmarks, each set Procrustes-aligned to the
template, mouth points; `common/metrics/video_metrics.py`). A frame where dlib finds no face counts as a
landmark failure, reported as a rate. The condition image is the clip's first frame; z and the noise segment
are seeded per clip, so every SNR, noise type and checkpoint sees the same ones.

The paper reports only curves (Fig. 5: metric against SNR, averaged over the five noises), so the plot
is the result; the table lists the clean row and the noise-averaged row per SNR.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from datamodules.pipeline.noise_mixing import EVAL_SNRS_DB
from datamodules.talking_face_windows import clip_collate

from ..common.images import signed_to_uint8
from ..common.metrics.reports import EvaluationReport, ResultRow, Sweep
from ..common.metrics.video_metrics import FrameLandmarks, VideoMetricAccumulator
from .speech import normalise_speech

METRICS = ("psnr", "ssim", "nlmd_mouth")
PAPER_NOTE = "paper: Fig. 5 curves only, no numbers"


def system_name(module) -> str:
    return "Proposed-NR" if module.hparams.noise_resilient else "Proposed"


class SweepEvaluator:
    """Generates and scores one model over the same test clips under every noise condition."""

    def __init__(self, module, datamodule, max_clips: int, landmarks: bool, seed: int, batch_size: int):
        self.module, self.datamodule = module.eval(), datamodule
        self.landmarks, self.seed, self.batch_size = landmarks, seed, batch_size
        self.find_landmarks = FrameLandmarks()
        clean = datamodule.datasets["test"]
        count = min(max_clips, len(clean))
        self.indices = sorted(np.random.default_rng(seed).choice(len(clean), count, replace=False).tolist())
        self.real = [
            self._real_clip(clean[i]) for i in tqdm(self.indices, desc="ground-truth landmarks", leave=False)
        ]

    def _real_clip(self, item: dict) -> tuple[np.ndarray, list | None]:
        frames = signed_to_uint8(item["video"])
        marks = [self.find_landmarks(frame) for frame in frames] if self.landmarks else None
        return frames, marks

    @torch.no_grad()
    def score(self, dataset: Dataset) -> dict[str, float]:
        accumulator = VideoMetricAccumulator(landmarks=self.landmarks)
        loader = DataLoader(
            Subset(dataset, self.indices), batch_size=self.batch_size, collate_fn=clip_collate
        )
        clip = 0
        for batch in loader:
            for video, length in zip(self._generate(batch, clip), batch["frame_mask"].sum(1).tolist()):
                real_frames, real_marks = self.real[clip]
                accumulator.update(
                    signed_to_uint8(video[:length]),
                    real_frames[:length],
                    real_landmarks=None if real_marks is None else real_marks[:length],
                )
                clip += 1
        return accumulator.compute()

    def _generate(self, batch: dict, first_clip: int) -> torch.Tensor:
        device = self.module.device
        video = batch["video"].to(device)
        noise = torch.stack([self._clip_noise(first_clip + i, video.shape[1]) for i in range(len(video))]).to(
            device
        )
        speech = normalise_speech(batch["audio"].to(device), batch["audio_length"].to(device))
        generated = self.module.generator(video[:, 0], speech, noise=noise).video
        return generated[:, : video.shape[1]].cpu()

    def _clip_noise(self, clip: int, frames: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + clip)
        return torch.randn(frames, self.module.generator.noise_dim, generator=generator)


def evaluate(
    module,
    datamodule,
    snrs_db: list[float] | None = None,
    noise_types: list[str] | None = None,
    max_clips: int = 1000,
    landmarks: bool = True,
    seed: int = 0,
    batch_size: int = 8,
) -> EvaluationReport:
    """The SNR sweep of one checkpoint: a report with the clean and per-SNR rows and the sweep curves."""
    snrs = [float(s) for s in (snrs_db if snrs_db is not None else EVAL_SNRS_DB)]
    bank = datamodule.evaluation_noise_bank()
    types = list(noise_types or bank.types)
    evaluator = SweepEvaluator(module, datamodule, max_clips, landmarks, seed, batch_size)
    clean = evaluator.score(datamodule.datasets["test"])
    results: dict[str, dict[float, dict[str, float]]] = {t: {} for t in types}
    conditions = [(t, s) for t in types for s in snrs]
    for noise_type, snr in tqdm(conditions, desc=f"{system_name(module)}: noise × SNR"):
        results[noise_type][snr] = evaluator.score(datamodule.noisy_test_set(noise_type, snr))
    return build_report(
        system_name(module), datamodule, clean, results, snrs, landmarks, len(evaluator.indices)
    )


def noise_average(results: dict[str, dict[float, dict[str, float]]], snr: float, metric: str) -> float:
    values = [per_snr[snr][metric] for per_snr in results.values() if metric in per_snr[snr]]
    return float(np.mean(values)) if values else float("nan")


def build_report(
    system: str, datamodule, clean: dict, results: dict, snrs: list[float], landmarks: bool, clips: int
) -> EvaluationReport:
    metrics = METRICS if landmarks else METRICS[:2]
    report = EvaluationReport(
        system="E2E-NR", dataset=datamodule.description, paper_dataset="LRW test / GRID, 1000 clips each"
    )
    failure = "landmark_failure_rate"
    for metric in metrics:
        report.rows.append(ResultRow(metric, f"{system}, clean speech", clean[metric], None, PAPER_NOTE))
    for snr in snrs:
        for metric in metrics:
            report.rows.append(
                ResultRow(
                    metric,
                    f"{system}, {snr:g} dB (mean of {len(results)} noises)",
                    noise_average(results, snr, metric),
                    None,
                    PAPER_NOTE,
                )
            )
    if landmarks:
        rates = [per_snr[s][failure] for per_snr in results.values() for s in snrs]
        report.rows.append(
            ResultRow("landmark failure rate (%)", f"{system}, clean speech", 100 * clean[failure])
        )
        report.rows.append(
            ResultRow(
                "landmark failure rate (%)", f"{system}, all noisy conditions", 100 * float(np.mean(rates))
            )
        )
    curves = {f"{system} · mean": {s: {m: noise_average(results, s, m) for m in metrics} for s in snrs}}
    curves.update({f"{system} · {t}": per_snr for t, per_snr in results.items()})
    report.sweep = Sweep(
        variable="SNR (dB)",
        metrics=metrics,
        curves=curves,
        references={f"{system} · clean": {m: clean[m] for m in metrics}},
    )
    report.details = {
        "clips": clips,
        "snrs_db": snrs,
        "noise_types": list(results),
        "clean": clean,
        "per_noise": {t: {str(s): v for s, v in per.items()} for t, per in results.items()},
        "nlmd_units": "pixels of the 128-px template after Procrustes alignment",
    }
    return report
