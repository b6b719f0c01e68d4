"""A2V's evaluation: the paper's one number, Embed2Lat's MSE on training and validation clips,
beside the trivial baselines it never reported, plus our own checks of the VAE and of motion.

Everything is on whole clips, one at a time. The MSE lives in the VAE's code space, whose scale depends
on β, the μ_code/σ_code normalisation and the data, so ours is comparable with the paper's 0.273 / 0.269
only in kind; the baselines say whether the model learned anything at all.

With planted latents (`planted.py`, the learning proof's diagnostic) each split also gets the speech-energy
correlation of the predicted residual along the planted direction, beside its control and the targets' own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..common.images import signed_to_uint8
from ..common.metrics.reports import EvaluationReport, ResultRow
from ..common.metrics.speech_dependence import MAX_LAG, frame_energy, lagged_correlations
from .generator import render
from .latents import compose

PAPER_MSE = {"train": 0.269, "val": 0.273}
PAPER_DATASET = "AVSpeech test split, 9,996 clips"
NOT_COMPARABLE = "code-space MSE: its scale depends on β, μ_code/σ_code and the data"
# Reported only for planted latents (a diagnostic, `a2v/planted.py`): does the predicted mouth direction
# follow the speech?
PLANTED_ROWS = (
    ("generated", "speech energy r of the planted direction in Δŵ", "planted latents (diagnostic), lag 0"),
    (
        "control",
        "speech energy r of the planted direction in Δŵ, another clip's speech",
        "control: what ignoring the speech reaches",
    ),
    (
        "planted",
        "speech energy r of the planted direction in Δw*",
        "the planted targets themselves (a prediction made from the speech may follow it more closely)",
    ),
)


def clip_codes(module, datamodule, split: str, max_clips: int | None) -> list[dict]:
    """Per whole clip of `split`: targets μ* and predictions μ' `(N, 96)`, residuals `(N, 1536)`, w0,
    audio."""
    from .data import LatentWindows

    clips = datamodule.latent_clips[split][:max_clips]
    dataset = LatentWindows(clips, None, random_start=False, sample_rate=datamodule.hparams.sample_rate)
    results = []
    for index in tqdm(range(len(dataset)), desc=f"A2V {split} clips", leave=False):
        item = dataset[index]
        residual = item["residual"][None].to(module.device)
        with torch.no_grad():
            target = module.targets(residual)[0]
            prediction = module(item["features"][None].to(module.device), target.shape[0])[0]
        results.append(
            {
                "key": clips[index].meta["key"],
                "target": target.cpu(),
                "prediction": prediction.cpu(),
                "residual": residual[0].cpu(),
                "w0": item["w0"],
                "audio": item["audio"].numpy(),
            }
        )
    return results


def mean_code(module, clips: list) -> torch.Tensor:
    """The mean target μ* `(96,)` over every frame of `clips` (`lightning_modules.a2v.data.LatentClip`s), one
    whole clip at a time on the module's device: the constant prediction of the "train mean" baseline."""
    total, frames = None, 0
    for clip in clips:
        with torch.no_grad():
            code = module.targets(clip.residual(slice(None))[None].to(module.device))[0].double()
        total = code.sum(0) if total is None else total + code.sum(0)
        frames += len(code)
    if total is None:
        raise ValueError("the mean code of no clips is undefined")
    return (total / frames).float()


def code_scores(clips: list[dict], train_mean: torch.Tensor) -> dict[str, float]:
    """Pooled MSE of μ' against μ*, of the three trivial predictions, and the mean per-dimension Pearson r."""
    target = torch.cat([c["target"] for c in clips])
    prediction = torch.cat([c["prediction"] for c in clips])
    own_mean = torch.cat([c["target"].mean(0, keepdim=True).expand_as(c["target"]) for c in clips])
    centred_t, centred_p = target - target.mean(0), prediction - prediction.mean(0)
    r = (centred_t * centred_p).sum(0) / (centred_t.norm(dim=0) * centred_p.norm(dim=0)).clamp_min(1e-12)
    return {
        "mse": float((prediction - target).square().mean()),
        "zero": float(target.square().mean()),
        "train_mean": float((target - train_mean).square().mean()),
        "clip_mean": float((target - own_mean).square().mean()),
        "pearson_r": float(r.mean()),
    }


def planted_scores(module, clips: list[dict], seed: int, sample_rate: int) -> dict[str, float]:
    """With planted latents (`a2v/planted.py`): Pearson r at lag 0 between the speech energy per frame and
    the planted-direction component of the decoded prediction Δŵ, averaged over clips; beside it the same for
    the prediction from the next clip's speech (cut or repeated to this clip's length: the control, what a
    model that ignores the speech reaches) and for the planted targets themselves."""
    from .planted import projection

    rows, series = len(module.hparams.rows), []
    for clip in clips:
        predicted = module.residuals(clip["prediction"][None].to(module.device))[0].cpu()
        series.append(
            (
                projection(predicted, seed, rows).numpy(),
                projection(clip["residual"], seed, rows).numpy(),
                frame_energy(clip["audio"], sample_rate, len(predicted)),
            )
        )
    scores: dict[str, list[float]] = {"generated": [], "control": [], "planted": []}
    for index, (predicted, planted, energy) in enumerate(series):
        other = np.resize(series[(index + 1) % len(series)][0], len(energy))
        for name, values in (("generated", predicted), ("control", other), ("planted", planted)):
            scores[name].append(lagged_correlations(values, energy)[MAX_LAG])
    return {name: float(np.nanmean(values)) for name, values in scores.items()}


def vae_scores(module, clips: list[dict]) -> dict[str, float]:
    """The VAE alone (Fig. 3): reconstruction MSE in normalised space (decoding μ) and motion retention,
    std over time of the reconstructed residual / of the true one, per clip, averaged."""
    errors, retention = [], []
    for clip in clips:
        residual = clip["residual"].to(module.device)
        with torch.no_grad():
            reconstructed = module.vae.residual(module.vae.code(residual))
            errors.append(
                float((module.vae.normalise(reconstructed) - module.vae.normalise(residual)).square().mean())
            )
        if len(residual) > 1:
            retention.append(float(reconstructed.std(0).mean() / residual.std(0).mean().clamp_min(1e-12)))
    return {
        "recon_mse": float(np.mean(errors)),
        "motion_retention": float(np.mean(retention)) if retention else float("nan"),
    }


def rendered_clip(module, clip: dict, gain: float) -> np.ndarray:
    """`(N, R, R, 3)` uint8 frames of the clip predicted from its audio, μ' × `gain`."""
    residual = module.residuals(clip["prediction"][None].to(module.device), gain)
    codes = compose(clip["w0"][None].to(module.device), residual, module.hparams.rows)[0]
    return signed_to_uint8(render(module.frozen("generator"), codes))


def frame_motion(frames: np.ndarray) -> float:
    """Mean absolute change between consecutive frames, in grey levels."""
    return float(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean()) if len(frames) > 1 else 0.0


def write_sample_video(module, clip: dict, path: Path, sample_rate: int) -> None:
    """inversion | predicted at gain 1 | predicted at `mu_gain`, side by side, with the clip's audio."""
    from datamodules.pipeline.video_writer import write_mp4

    codes = compose(
        clip["w0"][None].to(module.device), clip["residual"][None].to(module.device), module.hparams.rows
    )[0]
    panels = [
        signed_to_uint8(render(module.frozen("generator"), codes)),
        rendered_clip(module, clip, 1.0),
        rendered_clip(module, clip, module.hparams.mu_gain),
    ]
    frames = np.concatenate(panels, axis=2)
    # even sides for H.264
    frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)))
    write_mp4(path, frames, fps=25, audio=clip["audio"], sample_rate=sample_rate)


def evaluate_embed2lat(
    module, datamodule, max_clips: int | None, videos: int, out_dir: Path | None
) -> EvaluationReport:
    module.eval()
    splits = {split: clip_codes(module, datamodule, split, max_clips) for split in ("train", "val", "test")}
    train_mean = mean_code(module, datamodule.latent_clips["train"][:max_clips]).cpu()
    report = EvaluationReport(
        system="A2V (Wav2Vec2 → Embed2Lat → VAE → StyleGAN3)",
        dataset=datamodule.description,
        paper_dataset=PAPER_DATASET,
    )
    for split, clips in splits.items():
        if not clips:
            continue
        scores = code_scores(clips, train_mean)
        report.rows.append(
            ResultRow("Embed2Lat MSE", split, scores["mse"], PAPER_MSE.get(split), NOT_COMPARABLE)
        )
        for baseline in ("zero", "train_mean", "clip_mean"):
            report.rows.append(
                ResultRow(
                    f"MSE of predicting {baseline.replace('_', ' ')}",
                    split,
                    scores[baseline],
                    note="trivial baseline (not in the paper)",
                )
            )
        report.rows.append(ResultRow("Pearson r of μ' and μ* (mean over dims)", split, scores["pearson_r"]))
        report.details[split] = {"clips": len(clips), **scores}
        if datamodule.planted_config.enabled:
            planted = planted_scores(
                module, clips, datamodule.planted_config.seed, datamodule.hparams.sample_rate
            )
            for name, metric, note in PLANTED_ROWS:
                report.rows.append(ResultRow(metric, split, planted[name], note=note))
            report.details[split]["planted"] = planted
    test = splits["test"] or splits["val"]
    vae = vae_scores(module, test)
    report.rows.append(ResultRow("VAE reconstruction MSE (normalised, from μ)", "test", vae["recon_mse"]))
    report.rows.append(
        ResultRow(
            "VAE motion retention std(Δŵ)/std(Δw*)",
            "test",
            vae["motion_retention"],
            note="paper (Fig. 3): motion kept but weakened",
        )
    )
    for gain in (1.0, float(module.hparams.mu_gain)):
        motion = np.mean([frame_motion(rendered_clip(module, clip, gain)) for clip in test[: max(videos, 1)]])
        report.rows.append(
            ResultRow(
                "frame motion (grey levels per frame)",
                f"gain {gain:g}",
                float(motion),
                note="paper: no visible motion without the 500× gain",
            )
        )
    report.details["vae"] = vae
    if out_dir is not None and videos:
        sample_rate = datamodule.hparams.sample_rate
        written = [out_dir / "samples" / f"{clip['key']}.mp4" for clip in test[:videos]]
        for clip, path in zip(test, written):
            write_sample_video(module, clip, path, sample_rate)
        report.details["videos"] = [str(p) for p in written]
    return report
