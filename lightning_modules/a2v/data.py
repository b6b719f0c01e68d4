"""A2V's data: AVSpeech clips cropped by MTCNN, inverted into StyleGAN3's W+, and their Wav2Vec2 features,
each cached once.

It lives with the system rather than in `datamodules/` because its targets are made by A2V's own frozen
networks (the generator it inverts into, the speech encoder); the clips themselves come from the shared
`AVSpeechDataModule`.

`prepare_data` runs three resumable caches in order, each keyed by everything it depends on:

1. clips: 25-fps MTCNN crops and 16 kHz audio (`AVSpeechDataModule`);
2. latents: per clip the first frame's full code w0 `(16, 512)` and the selected rows of every frame's
   code `(T, 3, 512)`, plus each frame's final L_inv and PSNR (`lightning_modules/a2v/inversion.py`); a
   shard is `inversion.batch_clips` clips inverted together, so an interrupted run loses at most one.
   With `planted_mouth.enabled` (a diagnostic for the learning proof) nothing is inverted: the rows are
   planted from each frame's measured mouth opening (`lightning_modules/a2v/planted.py`), L_inv and PSNR
   are NaN;
3. features: Wav2Vec2's last layer over the whole clip, padded to exactly 2 vectors per frame, fp16.

Items (`sample`):

- "frames" (VAE): one frame's Δw of the selected rows, `residual (B, 1536)`, unnormalised;
- "windows" (Embed2Lat): `window_frames` consecutive frames (whole clips in validation and test, batch 1):
  `features (B, 2M, D)`, `residual (B, M, 1536)`, `w0 (B, 16, 512)`, `audio (B, 640·M)`. A training epoch
  draws `windows_per_clip` independent random windows of every clip.

The training split's residual mean and std (μ_code, σ_code: two scalars over every selected value) are
computed once and saved with checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from fractions import Fraction

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from datamodules.avspeech import AVSpeechDataModule
from datamodules.base import SPLITS, randint, stack_items
from datamodules.errors import DatasetError
from datamodules.pipeline.audio import stored_speech
from datamodules.pipeline.cache import REJECTED_LIST, CachedItems, ShardedCache
from datamodules.pipeline.configs import as_config as _config
from datamodules.pipeline.sync import frames_span
from datamodules.talking_face_windows import to_unit_range

from .generator import GeneratorConfig
from .inversion import InversionConfig
from .latents import residual_slice
from .planted import PlantedMouthConfig
from .speech_encoder import SpeechEncoderConfig

FEATURE_SHARD = 16


def _digest(params: dict) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]


class FrameResiduals(Dataset):
    """Every frame of the given clips: `{"residual": (len(rows)·512,)}` float32, Δw of the selected rows."""

    def __init__(self, clips: list[LatentClip]):
        self.clips = clips
        self.starts = np.cumsum([0] + [len(c.rows) for c in clips])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index: int) -> dict:
        clip = int(np.searchsorted(self.starts, index, side="right") - 1)
        return {
            "residual": self.clips[clip].residual(
                slice(index - self.starts[clip], index - self.starts[clip] + 1)
            )[0]
        }


class LatentClip:
    """One clip's cached latents (mmap), features and audio; `rows` `(T, 3, 512)`, `w0` `(16, 512)`."""

    def __init__(
        self, meta: dict, latents: dict, features: np.ndarray | None, audio: np.ndarray, rows: tuple
    ):
        self.meta, self.rows, self.w0 = meta, latents["rows"], latents["w0"][0]
        self.features, self.audio, self.row_index = features, audio, list(rows)

    def residual(self, frames: slice) -> torch.Tensor:
        """Δw of the selected rows of `frames` → `(n, len(rows)·512)` float32. Copied out of the read-only
        mapped cache (np.array): torch warns on, and must never write to, a tensor over read-only memory."""
        rows = torch.from_numpy(np.array(self.rows[frames], dtype=np.float32))
        return residual_slice(rows, torch.from_numpy(np.array(self.w0, dtype=np.float32)), self.row_index)


class LatentWindows(Dataset):
    """Windows of `window_frames` frames (whole clips when None) with their features, residuals and audio.

    With `windows_per_clip` k, item i is a window of clip i mod len(clips): k items per clip, each starting
    at its own random frame (`random_start`), drawn from torch's RNG, which the training loader seeds per
    item, so the k windows are independent and an epoch is reproducible."""

    def __init__(
        self,
        clips: list[LatentClip],
        window_frames: int | None,
        random_start: bool,
        sample_rate: int,
        windows_per_clip: int = 1,
    ):
        if windows_per_clip < 1:
            raise ValueError(f"windows_per_clip must be at least 1, got {windows_per_clip}")
        self.clips, self.window_frames, self.random_start, self.sample_rate = (
            clips,
            window_frames,
            random_start,
            sample_rate,
        )
        self.windows_per_clip = windows_per_clip

    def __len__(self) -> int:
        return len(self.clips) * self.windows_per_clip

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} of {len(self)}")
        clip = self.clips[index % len(self.clips)]
        total = len(clip.rows)
        count = min(self.window_frames or total, total)
        first = randint(total - count + 1) if self.random_start else 0
        start, stop = frames_span(first, count, Fraction(clip.meta["fps"]), self.sample_rate)
        return {
            "features": torch.from_numpy(
                np.asarray(clip.features[2 * first : 2 * (first + count)], dtype=np.float32)
            ),
            "residual": clip.residual(slice(first, first + count)),
            "w0": torch.tensor(clip.w0, dtype=torch.float32),  # a copy: the mapped cache is read-only
            "audio": torch.from_numpy(stored_speech(clip.audio[start:stop])),
            "first_frame": first,
        }


class A2VDataModule(AVSpeechDataModule):
    """AVSpeech for A2V: crops, their W+ codes and Wav2Vec2 features.

    Args:
        generator: the frozen generator codes are inverted into (`a2v.generator.GeneratorConfig`).
        inversion: the inversion schedule and LPIPS (`a2v.inversion.InversionConfig`).
        speech_encoder: the frozen Wav2Vec2 (`a2v.speech_encoder.SpeechEncoderConfig`).
        planted_mouth: diagnostic only: skip the inversion and plant every frame's residual from its
            measured mouth opening (`a2v.planted.PlantedMouthConfig`; the learning proof's known targets).
        rows: the W+ rows whose residuals are learned (0-based; our default 5, 6, 7).
        sample: "frames" (VAE; batch_size counts frames) or "windows" (Embed2Lat; batch_size counts windows).
        windows_per_clip: with "windows", the random training windows drawn from every clip per epoch, each
            with its own random start (1: an epoch sees each clip once); validation and test stay one
            whole clip per item.
        **kwargs: see `AVSpeechDataModule` and `TalkingFaceDataModule` (window_frames: Embed2Lat's 50).
    """

    def __init__(
        self,
        generator: GeneratorConfig | None = None,
        inversion: InversionConfig | None = None,
        speech_encoder: SpeechEncoderConfig | None = None,
        planted_mouth: PlantedMouthConfig | None = None,
        rows: tuple[int, ...] = (5, 6, 7),
        sample: str = "frames",
        windows_per_clip: int = 1,
        **kwargs,
    ):
        if kwargs.get("stream_url"):
            raise ValueError("A2V reads its latent and feature caches locally: stream_url is not supported")
        super().__init__(**kwargs)
        if sample not in ("frames", "windows"):
            raise ValueError(f"sample must be 'frames' or 'windows', got {sample!r}")
        if int(windows_per_clip) != windows_per_clip or windows_per_clip < 1:
            raise ValueError(f"windows_per_clip must be a positive integer, got {windows_per_clip!r}")
        self.generator_config = _config(GeneratorConfig, generator)
        self.inversion_config = _config(InversionConfig, inversion)
        self.speech_config = _config(SpeechEncoderConfig, speech_encoder)
        self.planted_config = _config(PlantedMouthConfig, planted_mouth)
        self.hparams.update(
            generator=asdict(self.generator_config),
            inversion=asdict(self.inversion_config),
            speech_encoder=asdict(self.speech_config),
            planted_mouth=asdict(self.planted_config),
            rows=list(rows),
            windows_per_clip=int(windows_per_clip),
        )
        self.code_stats: tuple[float, float] | None = None
        self.latent_clips: dict[str, list[LatentClip]] = {}

    # ------------------------------------------------------------------ caches

    def latent_cache(self) -> ShardedCache:
        params = {
            "clips": self.cache().directory.name,
            "generator": self.generator_config.identity(),
            "rows": list(self.hparams.rows),
        }
        # Inverted latents keep the key they had before planting existed (the digest sorts the keys).
        if self.planted_config.enabled:
            params["planted_mouth"] = self.planted_config.identity()
        else:
            params["inversion"] = {k: v for k, v in asdict(self.inversion_config).items() if k != "device"}
        return self.sharded_cache(f"latents-{_digest(params)}", params)

    def feature_cache(self) -> ShardedCache:
        params = {"clips": self.cache().directory.name, "speech_encoder": self.speech_config.identity()}
        return self.sharded_cache(f"wav2vec2-{_digest(params)}", params)

    def prepare_data(self) -> None:
        clips = self.prepare_clips()
        self._invert(clips)
        self._extract_features(clips)

    def prepare_clips(self) -> CachedItems:
        """The first cache alone: every clip's 25-fps face crops and audio (also what the trained
        stand-in generator learns from, `lightning_modules/a2v/stand_in.py`)."""
        super().prepare_data()
        clips = self.cache().read()
        if len(clips) == 0:
            raise DatasetError(
                f"{self.root}: no clip survived face cropping; see {self.cache().side_file(REJECTED_LIST)}."
            )
        return clips

    def _invert(self, clips: CachedItems) -> None:
        from .generator import build_generator
        from .inversion import Inverter

        cache, batch = self.latent_cache(), self.inversion_config.batch_clips
        shards = [list(range(start, min(start + batch, len(clips)))) for start in range(0, len(clips), batch)]
        todo = cache.shards_to_write(len(shards))
        if not todo:
            return
        if self.planted_config.enabled:
            self._plant(clips, cache, [(k, shards[k]) for k in todo])
            return
        inverter = Inverter.build(build_generator(self.generator_config), self.inversion_config)
        total = sum(clips.metas[r]["frames"] for k in todo for r in shards[k])
        with tqdm(total=total, desc="GAN inversion", unit="frame") as progress:
            for k in todo:
                frames = [to_unit_range(clips[r][1]["frames"]) for r in shards[k]]
                inverted = inverter.invert_clips(
                    frames, seed=self.inversion_config.seed + k, progress=progress
                )
                items = [
                    (
                        clips.metas[r],
                        {
                            "w0": c.codes[:1].numpy(),
                            "rows": c.codes[:, list(self.hparams.rows)].numpy(),
                            "loss": c.loss.numpy(),
                            "psnr": c.psnr.numpy(),
                        },
                    )
                    for r, c in zip(shards[k], inverted)
                ]
                cache.write_shard(k, items, [])

    def _plant(self, clips: CachedItems, cache: ShardedCache, shards: list[tuple[int, list[int]]]) -> None:
        """Planted instead of inverted latents: w0 is the generator's average code for every clip, the rows
        carry the measured mouth opening (`lightning_modules/a2v/planted.py`)."""
        from .generator import NUM_WS, build_generator
        from .planted import measured_opening, planted_rows

        rank_zero_info(
            "a2v: planted_mouth: GAN inversion skipped, residuals planted from the mouth opening "
            "(a diagnostic: the codes do not render the frames)."
        )
        w0 = build_generator(self.generator_config).w_avg.float()[None].expand(NUM_WS, -1)
        rows = list(self.hparams.rows)
        for k, members in shards:
            items = []
            for r in members:
                opening = measured_opening(np.asarray(clips[r][1]["frames"]))
                nan = np.full(len(opening), np.nan, dtype=np.float32)
                items.append(
                    (
                        clips.metas[r],
                        {
                            "w0": w0[None].numpy(),
                            "rows": planted_rows(opening, w0, rows, self.planted_config).numpy(),
                            "loss": nan,
                            "psnr": nan,
                        },
                    )
                )
            cache.write_shard(k, items, [])

    def _extract_features(self, clips: CachedItems) -> None:
        from .speech_encoder import build_speech_encoder, features_for_frames, speech_features

        cache = self.feature_cache()
        shards = [
            range(start, min(start + FEATURE_SHARD, len(clips)))
            for start in range(0, len(clips), FEATURE_SHARD)
        ]
        todo = cache.shards_to_write(len(shards))
        if not todo:
            return
        device = self.inversion_config.torch_device()
        encoder = build_speech_encoder(self.speech_config).to(device)
        for k in tqdm(todo, desc="Wav2Vec2 features", unit="shard"):
            items = []
            for r in shards[k]:
                meta, arrays = clips[r]
                with torch.no_grad():
                    wave = torch.from_numpy(stored_speech(arrays["audio"]))[None].to(device)
                    features = speech_features(encoder, wave)[0]
                items.append(
                    (meta, {"features": features_for_frames(features, meta["frames"]).half().cpu().numpy()})
                )
            cache.write_shard(k, items, [])

    # ------------------------------------------------------------------ datasets

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        latents = _by_key(self.latent_cache().read())
        features = _by_key(self.feature_cache().read())
        missing = [m["key"] for m in self._items.metas if m["key"] not in latents or m["key"] not in features]
        if missing:
            raise DatasetError(
                f"{self.cache_root}: {len(missing)} clip(s) lack latents or features (e.g. {missing[0]}); "
                "run prepare_data (make train EXP=a2v_invert) first."
            )
        rows = tuple(self.hparams.rows)
        for split in SPLITS:
            self.latent_clips[split] = [
                LatentClip(
                    meta, latents[meta["key"]], features[meta["key"]]["features"], arrays["audio"], rows
                )
                for meta, arrays in (self._items[r] for r in self._rows[split])
            ]
        if self.code_stats is None:
            self.code_stats = residual_stats(self.latent_clips["train"] or self.latent_clips["test"])
        self._check_window()

    def _check_window(self) -> None:
        window = self.hparams.window_frames
        short = [c.meta["key"] for c in self.latent_clips["train"] if window and len(c.rows) < window]
        if short and self.hparams.sample == "windows":
            rank_zero_info(
                f"a2v: {len(short)} training clip(s) shorter than window_frames={window} are left out."
            )
            self.latent_clips["train"] = [c for c in self.latent_clips["train"] if c.meta["key"] not in short]

    def dataset(self, split: str) -> Dataset:
        clips = self.latent_clips[split]
        if self.hparams.sample == "frames":
            return FrameResiduals(clips)
        train = split == "train"
        return LatentWindows(
            clips,
            self.hparams.window_frames if train else None,
            random_start=train,
            sample_rate=self.hparams.sample_rate,
            windows_per_clip=self.hparams.get("windows_per_clip", 1) if train else 1,
        )

    def statistics(self) -> dict:
        """Inversion quality and sizes, for the preparation stage's summary (planted latents: no
        inversion)."""
        clips = [c for split in SPLITS for c in self.latent_clips[split]]
        if self.planted_config.enabled:
            return {
                "clips": {s: len(self.latent_clips[s]) for s in SPLITS},
                "frames": sum(len(c.rows) for c in clips),
                "latents": "planted from the mouth opening, not inverted",
                "code_mean": self.code_stats[0],
                "code_std": self.code_stats[1],
            }
        latents = _by_key(self.latent_cache().read())
        losses = np.concatenate([np.asarray(latents[c.meta["key"]]["loss"]) for c in clips])
        psnr = np.concatenate([np.asarray(latents[c.meta["key"]]["psnr"]) for c in clips])
        first = np.array([latents[c.meta["key"]]["loss"][0] for c in clips])
        return {
            "clips": {s: len(self.latent_clips[s]) for s in SPLITS},
            "frames": int(len(losses)),
            "first_frame_loss_mean": float(first.mean()),
            "loss_mean": float(losses.mean()),
            "loss_p95": float(np.percentile(losses, 95)),
            "psnr_mean_db": float(psnr.mean()),
            "code_mean": self.code_stats[0],
            "code_std": self.code_stats[1],
        }

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.dataset("train"), self.per_device_batch(), shuffle=True, collate=stack_items)

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def _evaluation_loader(self, split: str) -> DataLoader:
        # Whole clips one at a time, so Embed2Lat's pooling never averages padding.
        batch = self.hparams.eval_batch_size if self.hparams.sample == "frames" else 1
        return self.loader(self.dataset(split), batch, shuffle=False, collate=stack_items)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.code_stats is not None:
            state.update(code_mean=self.code_stats[0], code_std=self.code_stats[1])
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "code_mean" in state:
            self.code_stats = (float(state["code_mean"]), float(state["code_std"]))


def _by_key(items: CachedItems) -> dict[str, dict[str, np.ndarray]]:
    return {meta["key"]: arrays for meta, arrays in (items[i] for i in range(len(items)))}


def residual_stats(clips: list[LatentClip]) -> tuple[float, float]:
    """μ_code and σ_code: the mean and std of every selected Δw value of every frame of `clips`."""
    total = count = square = 0.0
    for clip in clips:
        residual = clip.residual(slice(None)).double()
        total, square, count = (
            total + residual.sum().item(),
            square + residual.square().sum().item(),
            count + residual.numel(),
        )
    mean = total / count
    return mean, max((square / count - mean**2) ** 0.5, 1e-8)
