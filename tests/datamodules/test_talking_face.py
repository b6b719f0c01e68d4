"""Video datasets (LRW, GRID, TCD-TIMIT, AVSpeech) through the shared pipeline, on generated fixtures in
their real layouts: shapes, ranges, splits, audio/video alignment and rejection of the broken files."""

import csv
import json
import re
from fractions import Fraction

import numpy as np
import pytest
import torch

from datamodules.avspeech import AVSpeechDataModule
from datamodules.grid import GRIDDataModule, read_align
from datamodules.lrw import LRWDataModule
from datamodules.pipeline.action_units import AULabelConfig
from datamodules.pipeline.face_tracks import FaceCropConfig
from datamodules.tcd_timit import TCDTIMITDataModule

BOX = FaceCropConfig(method="box")
GEOMETRY = AULabelConfig(source="geometry")
CASES = {
    # name: (datamodule class, its arguments: each system's setting at a small crop size)
    "lrw": (LRWDataModule, dict(image_size=64, sample_rate=8000)),  # E2E-NR
    "grid": (GRIDDataModule, dict(image_size=56, crop=BOX, mfcc_width=28, au_labels=GEOMETRY)),  # TCSAN
    "tcd_timit": (
        TCDTIMITDataModule,
        dict(
            image_size=56,
            crop=FaceCropConfig(method="box", detect_every=5),
            mfcc_width=28,
            au_labels=GEOMETRY,
        ),
    ),
    "avspeech": (
        AVSpeechDataModule,
        dict(
            image_size=64,
            fps=25,
            crop=FaceCropConfig(
                method="box",
                detector="mtcnn",
                box_track="interpolate",
                detect_every=10,
                box_scale=1.3,
                single_face=True,
            ),
        ),
    ),
}
# The reason each deliberately broken file must be rejected with (see datamodules/synthetic/broken.py).
REASONS = {
    "truncated_video": r"cannot be decoded|fewer than",
    "wrong_fps": r"wrong fps",
    "short_audio": r"audio shorter than the video",
    "no_face_video": r"No usable face",
    "two_faces": r"2 faces",
}


@pytest.fixture(scope="module", params=sorted(CASES))
def prepared(request, isolated_data_and_runs):
    from datamodules.synthetic import generate_dataset

    name = request.param
    root = generate_dataset(name, isolated_data_and_runs / "fixtures" / name, size="tiny", broken=True)
    cls, kwargs = CASES[name]
    datamodule = cls(
        root=str(root), batch_size=2, eval_batch_size=2, num_workers=0, prepare_workers=0, **kwargs
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    return name, root, datamodule


def _all_items(datamodule):
    return [
        (split, dataset[i]) for split, dataset in datamodule.datasets.items() for i in range(len(dataset))
    ]


def test_batches_have_the_documented_shapes_dtypes_and_ranges(prepared):
    name, _, datamodule = prepared
    loader = (
        datamodule.train_dataloader()
        if len(datamodule.datasets["train"]) >= 2
        else datamodule.test_dataloader()
    )
    batch = datamodule.on_after_batch_transfer(next(iter(loader)), 0)
    size, rate = datamodule.hparams.image_size, datamodule.hparams.sample_rate
    b, t = batch["frame_mask"].shape
    assert batch["video"].shape == (b, t, 3, size, size) and batch["video"].dtype == torch.float32
    assert -1.0 <= batch["video"].min() < 0 < batch["video"].max() <= 1.0
    assert batch["landmarks"].shape == (b, t, 68, 2) and batch["detected"].dtype == torch.bool
    assert batch["audio"].ndim == 2 and batch["audio"].abs().max() <= 1.0
    fps = Fraction(datamodule.hparams.fps or {"tcd_timit": Fraction(30000, 1001)}.get(name, 25))
    expected = [int(n * rate / fps) for n in batch["frame_mask"].sum(1).tolist()]
    assert batch["audio_length"].tolist() == expected  # exactly the frames' audio span
    if datamodule.hparams.mfcc_width:
        assert batch["mfcc"].shape == (b, t, 12, 28)
    assert batch["identity"].shape == (b, 3, size, size)
    if datamodule.au_config is not None:
        assert batch["au"].shape == (b, t, 5) and set(batch["au"].unique().tolist()) <= {0.0, 1.0}
        assert batch["au_mask"].shape == (b, t) and batch["au_mask"].dtype == torch.bool


def test_identity_is_the_clips_first_frame_and_au_rates_travel_with_checkpoints(prepared):
    _, _, datamodule = prepared
    item = datamodule.datasets["test"][0]  # evaluation windows start at frame 0
    assert torch.equal(item["identity"], item["video"][0])
    if datamodule.au_config is None:
        assert "au" not in item and "au_rates" not in datamodule.state_dict()
        return
    rates = datamodule.state_dict()["au_rates"]
    assert len(rates) == 5 and all(0 <= r <= 1 for r in rates)
    restored = type(datamodule)(root=datamodule.hparams.root, au_labels=GEOMETRY)
    restored.load_state_dict(datamodule.state_dict())
    assert restored.au_rates.tolist() == rates


def test_landmarks_lie_on_the_face_inside_the_crop(prepared):
    _, _, datamodule = prepared
    for _, item in _all_items(datamodule)[:3]:
        marks = item["landmarks"][item["detected"]]
        size = datamodule.hparams.image_size
        assert ((marks > -0.1 * size) & (marks < 1.1 * size)).float().mean() > 0.95
        mouth, eyes = marks[:, 48:68, 1].mean(), marks[:, 36:48, 1].mean()
        assert mouth > eyes  # upright faces: the mouth below the eyes


def test_audio_and_mouth_motion_are_aligned_to_the_frame(prepared):
    """The generated mouth opens with the speech: its opening (inner-lip landmark gap) must correlate with the
    per-frame audio energy best at lag 0; an offset of even one frame in the audio slicing would move the
    peak."""
    _, _, datamodule = prepared
    correlation = {lag: [] for lag in (-2, -1, 0, 1, 2)}
    for _, item in _all_items(datamodule):
        marks, wave = item["landmarks"].numpy(), item["audio"].numpy()
        frames = len(marks)
        opening = np.linalg.norm(marks[:, 66] - marks[:, 62], axis=1)
        edges = np.linspace(0, len(wave), frames + 1).astype(int)
        energy = np.array([np.sqrt(np.mean(wave[a:b] ** 2)) for a, b in zip(edges, edges[1:])])
        for lag in correlation:
            x, y = opening[max(0, lag) : frames + min(0, lag)], energy[max(0, -lag) : frames - max(0, lag)]
            correlation[lag].append(np.corrcoef(x, y)[0, 1])
    mean = {lag: float(np.nanmean(values)) for lag, values in correlation.items()}
    assert mean[0] > 0.6 and mean[0] > max(v for lag, v in mean.items() if lag) + 0.1, mean


def test_every_broken_file_is_rejected_with_its_reason(prepared):
    _, root, datamodule = prepared
    broken = json.loads((root / ".synthetic.json").read_text())["broken"]
    with open(datamodule.cache().directory / "rejected.csv") as handle:
        rejected = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    videos = [entry for entry in broken if entry["defect"] in REASONS]
    assert videos
    for entry in videos:
        # The row is the clip's video; the message names the faulty file (the video or its separate audio).
        reason = next(
            (r for path, r in rejected.items() if entry["path"] in path or entry["path"] in r), None
        )
        assert reason is not None, f"{entry} was not rejected"
        assert re.search(REASONS[entry["defect"]], reason), (entry, reason)
    kept = {item["key"] for item in datamodule.cache().read().metas}
    assert len(kept) + len(rejected) == len(datamodule.clips)  # nothing silently dropped


def test_speakers_never_cross_splits(prepared):
    name, _, datamodule = prepared
    speakers = {
        split: {c.speaker for c in datamodule.clips if c.split == split} for split in ("train", "test")
    }
    if name != "lrw":  # LRW has no speaker labels; its official split is by clip
        assert speakers["train"].isdisjoint(speakers["test"]) and speakers["test"]


def test_rerun_skips_finished_shards(prepared):
    _, _, datamodule = prepared
    before = sorted(p.stat().st_mtime_ns for p in datamodule.cache().directory.glob("shard-*"))
    datamodule.prepare_data()
    assert sorted(p.stat().st_mtime_ns for p in datamodule.cache().directory.glob("shard-*")) == before


def test_other_parameters_need_another_cache(prepared):
    _, _, datamodule = prepared
    other = type(datamodule)(**{**datamodule.hparams, "image_size": 32})
    assert other.cache().directory != datamodule.cache().directory


def test_grid_alignments_put_speech_inside_words(isolated_data_and_runs):
    from datamodules.pipeline.audio import read_audio
    from datamodules.synthetic import generate_dataset

    root = generate_dataset("grid", isolated_data_and_runs / "fixtures" / "grid", size="tiny", broken=True)
    align = sorted((root / "align" / "s1").glob("*.align"))[0]
    words = read_align(align)
    wave = read_audio(root / "audio_25k" / "s1" / f"{align.stem}.wav", 25000)
    rms = lambda a, b: np.sqrt(np.mean(wave[int(a * 25000) : int(b * 25000)] ** 2))  # noqa: E731
    spoken = [rms(a, b) for a, b, w in words if w not in ("sil", "sp")]
    silent = [rms(a, b) for a, b, w in words if w == "sil"]
    assert len(spoken) == 6 and min(spoken) > 5 * max(silent)
