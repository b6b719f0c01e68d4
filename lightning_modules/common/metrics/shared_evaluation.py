"""One evaluation for every system: the shared metric suite on the test split, and the noise sweep.

`make eval` runs a system's own paper protocol (its `paper_evaluation`) and then `shared_report`, whose
rows use the same metric names for all five systems (`metric_suite.py`), so their numbers sit in one
table and in one W&B project. With `NOISE_SWEEP=1`, `shared_noise_sweep` repeats the suite's video
metrics with the test speech mixed with E2E-NR's held-out noises at each SNR (E2E-NR's protocol,
docs/e2e_nr.md), for any system that makes video from speech.

A system takes part by giving `evaluation_samples(datamodule, split, max_items, noise)`, an iterator of
`GeneratedSample`; video systems get it from `TalkingFaceSamples`, which only needs `synthesise_chunks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from datamodules.synthetic.truth import read_truth, truth_path

from ..contracts import whole_video
from ..images import signed_to_uint8
from .metric_suite import GeneratedSample, MetricSettings, MetricSuite
from .report_clips import ReportClips
from .reports import EvaluationReport, ResultRow, Sweep
from .sample_dump import SampleDump
from .speech_dependence import loudness_matched
from .speech_picture import SpeechPicture
from .video_metrics import FrameLandmarks

SWEEP_METRICS = ("psnr", "ssim", "lmd_mouth", "lse_d", "lse_c")
SHARED_SETTING = "shared harness"  # how the shared rows' `setting` starts, in reports, W&B and `make compare`
NOT_COMPUTED = "not computed: "
Noise = tuple[str, float] | None  # (held-out noise type, SNR in dB)


class TalkingFaceSamples:
    """`evaluation_samples` for systems that turn speech and a face into video (`synthesise_chunks`).

    Each whole test clip is generated from its speech (mixed with `noise` when given) and its first
    frame, with the random state seeded per clip so that every condition and checkpoint sees the same.
    With `controls`, the clip is also generated from the next clip's speech (fitted to this clip's length)
    and from silence, for the speech-dependence checks (`speech_dependence.py`), and, where the clip
    records its true mouth, from the next clip's speech at this clip's loudness (`lip_shape.py`).
    """

    def evaluation_samples(
        self,
        datamodule,
        split: str = "test",
        max_items: int | None = None,
        noise: Noise = None,
        seed: int = 0,
        controls: bool = False,
    ) -> Iterator[GeneratedSample]:
        dataset = (
            datamodule.noisy_test_set(*noise, split=split) if noise else datamodule.evaluation_clips(split)
        )
        rate = int(datamodule.hparams.sample_rate)
        for index in range(min(len(dataset), max_items or len(dataset))):
            item = dataset[index]
            real = signed_to_uint8(item["video"])
            speech = item["audio"].numpy()
            torch.manual_seed(seed + index)
            generated = self.evaluation_video(datamodule, split, index, speech, real[0])
            speaker = dataset.items.metas[dataset.rows[index]]["speaker"]
            clean = item.get("clean_audio", item["audio"]).numpy()
            sample = GeneratedSample(generated[: len(real)], real, str(speaker), clean, rate, paired=True)
            sample.true_mouth = recorded_mouth(
                datamodule, dataset, index, int(item["first_frame"]), len(real)
            )
            if controls:
                other = (
                    dataset[(index + 1) % len(dataset)]["audio"].numpy() if len(dataset) > 1 else speech[::-1]
                )
                drivings = {"control": fitted(other, len(speech)), "silent": np.zeros_like(speech)}
                sample.control_speech = drivings["control"]  # played with the control in `make compare`
                if sample.true_mouth is not None:
                    drivings["matched"] = loudness_matched(drivings["control"], speech, rate)
                for name, driving in drivings.items():
                    torch.manual_seed(seed + index)
                    setattr(
                        sample,
                        name,
                        self.evaluation_video(datamodule, split, index, driving, real[0])[: len(real)],
                    )
            yield sample

    def evaluation_video(
        self, datamodule, split: str, index: int, speech: np.ndarray, face: np.ndarray
    ) -> np.ndarray:
        """Clip `index` of `split` from its `(L,)` speech and first frame `(S, S, 3)` uint8 → `(T, S, S, 3)`
        uint8."""
        return whole_video(self.synthesise_chunks(speech, face))


def recorded_mouth(
    datamodule, dataset, index: int, first: int, frames: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The true (opening, width) `(frames,)` from frame `first` of clip `index` of `dataset`, when its data
    was generated with them recorded (`datamodules/synthetic/truth.py`); None for any other data."""
    root = getattr(datamodule, "root", None)
    clip = Path(dataset.items.metas[dataset.rows[index]]["path"])
    if root is None or not clip.is_relative_to(root) or not truth_path(root, clip).is_file():
        return None
    opening, width = read_truth(root, clip)
    return opening[first : first + frames], width[first : first + frames]


def fitted(speech: np.ndarray, length: int) -> np.ndarray:
    """`speech` cut or repeated to `length` samples."""
    return np.resize(np.asarray(speech), length).astype(np.float32)


def evaluate_samples(
    samples: Iterator[GeneratedSample], settings: MetricSettings, total: int | None, description: str
) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    suite = MetricSuite(settings)
    for sample in tqdm(samples, total=total, desc=description, unit="sample"):
        suite.update(sample)
    values, missing = suite.compute()
    return values, missing, suite.notes()


def shared_report(
    module,
    datamodule,
    settings: MetricSettings,
    system: str,
    split: str = "test",
    max_items: int | None = None,
    dump: Path | None = None,
    picture: Path | None = None,
    clips: ReportClips | None = None,
) -> EvaluationReport:
    """The suite on `split`: one row per metric (value or "not computed: why"); with `dump`, every sample
    is also written there for outside scorers (`sample_dump.py`); with `picture`, the speech-dependence
    picture of the first usable samples is drawn there (`speech_picture.py`); `clips` writes the first few
    samples for `make compare`'s report (`report_clips.py`)."""
    module.eval()
    samples = module.evaluation_samples(
        datamodule,
        split=split,
        max_items=max_items,
        **({"controls": True} if isinstance(module, TalkingFaceSamples) else {}),
    )
    writer = SampleDump(dump) if dump is not None else None
    if writer is not None:
        samples = writer.passing(samples)
    drawer = SpeechPicture(FrameLandmarks()) if picture is not None else None
    if drawer is not None:
        samples = drawer.passing(samples)
    if clips is not None:
        samples = clips.passing(samples)
    values, missing, notes = evaluate_samples(samples, settings, max_items, f"{system}: shared metrics")
    if writer is not None:
        print(f"[eval] test outputs for outside scorers: {writer.close()}")
    if drawer is not None and (drawn := drawer.write(picture)) is not None:
        print(f"[eval] speech-dependence picture: {drawn}")
    if clips is not None and (index := clips.close()) is not None:
        print(f"[eval] clips for make compare: {index}")
    report = EvaluationReport(system=system, dataset=datamodule.description, paper_dataset="—")
    setting = f"{SHARED_SETTING}, {split} split"
    for key in sorted(values):
        report.rows.append(ResultRow(key, setting, values[key], None, notes.get(key, "")))
    for key in sorted(missing):
        report.rows.append(ResultRow(key, setting, float("nan"), None, NOT_COMPUTED + missing[key]))
    report.details = {"shared_metrics": values, "not_computed": missing}
    return report


def shared_noise_sweep(
    module,
    datamodule,
    settings: MetricSettings,
    system: str,
    snrs_db: list[float],
    noise_types: list[str] | None = None,
    max_items: int | None = None,
) -> Sweep:
    """PSNR, SSIM, mouth LMD and LSE at each SNR, averaged over the held-out noise types (+ clean)."""
    if not hasattr(datamodule, "noisy_test_set") or not isinstance(module, TalkingFaceSamples):
        raise ValueError(
            f"{system} does not generate video from speech; the noise sweep is for video systems."
        )
    module.eval()
    # Only SWEEP_METRICS are plotted: the networks of the other metrics would run at every SNR for nothing.
    light = dataclasses.replace(
        settings,
        lpips_backbone=None,
        inception_weights=None,
        fid_inception_weights=None,
        i3d_weights=None,
        arcface_weights=None,
        frames_per_clip=1,
    )
    types = list(noise_types or datamodule.evaluation_noise_bank().types)
    clean, _, _ = evaluate_samples(
        module.evaluation_samples(datamodule, max_items=max_items), light, max_items, f"{system}: clean"
    )
    curves: dict[float, dict[str, list[float]]] = {}
    for noise_type in types:
        for snr in snrs_db:
            values, _, _ = evaluate_samples(
                module.evaluation_samples(datamodule, max_items=max_items, noise=(noise_type, float(snr))),
                light,
                max_items,
                f"{system}: {noise_type} {snr:g} dB",
            )
            for metric in SWEEP_METRICS:
                if metric in values:
                    curves.setdefault(float(snr), {}).setdefault(metric, []).append(values[metric])
    metrics = tuple(m for m in SWEEP_METRICS if m in clean)
    mean_curve = {snr: {m: float(np.mean(v[m])) for m in metrics if m in v} for snr, v in curves.items()}
    return Sweep(
        variable="SNR (dB)",
        metrics=metrics,
        curves={f"{system} · mean of {len(types)} noises": mean_curve},
        references={f"{system} · clean": {m: clean[m] for m in metrics}},
    )
