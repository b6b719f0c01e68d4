"""The Youtubers, AVSpeech and TCD-TIMIT synthetic layouts (tiny sizes), and the LRW / GRID bad files
added for frame-rate and audio-length checks: exact names, media formats, determinism, broken files."""

import csv
import io
import json
import re
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from datamodules.synthetic import generate_dataset

NTSC = Fraction(30000, 1001)


def marker(root):
    return json.loads((root / ".synthetic.json").read_text())


def broken_paths(root):
    return {e["path"]: e["defect"] for e in marker(root)["broken"]}


def is_good(root, path):
    return path.relative_to(root).as_posix() not in broken_paths(root)


def video_info(path):
    """(average rate, decoded frame count, (width, height), audio sample rate or None)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        audio = container.streams.audio[0].sample_rate if container.streams.audio else None
        frames = sum(1 for _ in container.decode(video=0))
        return stream.average_rate, frames, (stream.width, stream.height), audio


def same_files(good_only, with_broken, pattern):
    """Every `pattern` file of the dataset made without bad files is byte-identical in the one with them."""
    files = sorted(p.relative_to(good_only) for p in good_only.glob(pattern))
    assert files
    return all((good_only / f).read_bytes() == (with_broken / f).read_bytes() for f in files)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """name → (root generated with bad files, root generated again with the same seed without them, or
    None for TCD-TIMIT: its threaded clip writer is the AVSpeech one, checked there, and time is short)."""
    made = {}
    for name in ("youtubers", "avspeech", "tcd_timit"):
        folder = tmp_path_factory.mktemp(name)
        made[name] = (
            generate_dataset(name, folder / "broken", size="tiny", seed=0, broken=True),
            None if name == "tcd_timit" else generate_dataset(name, folder / "clean", size="tiny"),
        )
    return made


# ----------------------------------------------------------------------------- Youtubers


def test_youtubers_layout(datasets):
    _, root = datasets["youtubers"]
    for split, unique in (("train", 3), ("test", 1)):
        folders = sorted((root / "dataset" / split).iterdir())
        assert len(folders) == 3 and all(re.fullmatch(r"[a-z0-9]+", f.name) for f in folders)
        for folder in folders:
            pngs = {
                int(m[1]): p
                for p in folder.glob("*.png")
                if (m := re.fullmatch(r"cropped_face_frame_(\d+)\.png", p.name))
            }
            assert sorted(pngs) == list(range(5 * unique))
            for k, png in pngs.items():
                data = png.read_bytes()
                assert data[:2] == b"\xff\xd8"  # JPEG despite the name
                image = Image.open(io.BytesIO(data))
                assert (
                    image.format == "JPEG" and image.size[0] == image.size[1] and 200 <= image.size[0] <= 290
                )
                info = sf.info(folder / f"preprocessed_frame_{k}.wav")
                assert (info.samplerate, info.channels, info.subtype, info.frames) == (
                    16000,
                    1,
                    "PCM_16",
                    16000,
                )
            # Each unique face is stored 5 times in a row, each copy with its own 1-s speech window.
            blocks = [{pngs[k].read_bytes() for k in range(5 * j, 5 * j + 5)} for j in range(unique)]
            assert all(len(b) == 1 for b in blocks) and len(set.union(*blocks)) == unique
            wavs = {(folder / f"preprocessed_frame_{k}.wav").read_bytes() for k in pngs}
            assert len(wavs) == len(pngs)


def test_youtubers_faces_are_stored_bgr(datasets):
    root, _ = datasets["youtubers"]
    for png in sorted(root.glob("dataset/*/*/cropped_face_frame_0.png")):
        stored = np.asarray(Image.open(png).convert("RGB"), dtype=float)
        h, w = stored.shape[:2]
        centre = stored[h * 2 // 5 : h * 3 // 5, w * 2 // 5 : w * 3 // 5].reshape(-1, 3).mean(0)
        assert centre[2] > centre[0] + 10  # skin is redder than blue: red sits in the last channel


def test_youtubers_broken_pairs_and_determinism(datasets, tmp_path):
    root, clean = datasets["youtubers"]
    entries = {d: root / p for p, d in broken_paths(root).items()}
    assert set(entries) == {"silent_wav", "truncated_image", "no_face_image", "missing_pair"}
    assert all(p.exists() and "/train/" in p.as_posix() for p in entries.values())
    assert not sf.read(entries["silent_wav"])[0].any() and sf.info(entries["silent_wav"]).frames == 16000
    assert (
        entries["silent_wav"]
        .with_name(entries["silent_wav"].name.replace("preprocessed_frame_", "cropped_face_frame_"))
        .with_suffix(".png")
        .exists()
    )
    with pytest.raises(OSError):
        Image.open(entries["truncated_image"]).load()
    k = entries["missing_pair"].stem.rsplit("_", 1)[1]
    assert not (entries["missing_pair"].parent / f"preprocessed_frame_{k}.wav").exists()
    assert same_files(clean, root, "dataset/*/*/*")  # same seed, same bytes; bad files disturb nothing
    other = generate_dataset("youtubers", tmp_path / "seed1", size="tiny", seed=1)
    first = sorted(other.glob("dataset/train/*/preprocessed_frame_0.wav"))[0]
    assert first.read_bytes() != (root / first.relative_to(other)).read_bytes()


# ----------------------------------------------------------------------------- AVSpeech


def read_rows(root, split):
    return list(csv.reader((root / f"avspeech_{split}.csv").read_text().splitlines()))


def test_avspeech_csv_and_clips(datasets):
    root, _ = datasets["avspeech"]
    bad = broken_paths(root)
    rows = {split: read_rows(root, split) for split in ("train", "test")}
    assert (len(rows["train"]), len(rows["test"])) == (4 + 1 + 3, 2)  # + not downloaded, + bad clips
    rates, missing = set(), 0
    for youtube_id, start, end, face_x, face_y in rows["train"] + rows["test"]:  # 5 columns, no header
        assert len(youtube_id) == 11 and re.fullmatch(r"[A-Za-z0-9_-]{11}", youtube_id)
        assert re.fullmatch(r"\d+\.\d{6}", start) and re.fullmatch(r"\d+\.\d{6}", end)
        assert 0 < float(face_x) < 1 and 0 < float(face_y) < 1
        clip = root / "clips" / f"{youtube_id}_{start}.mp4"
        if not clip.exists():
            missing += 1
            continue
        if clip.relative_to(root).as_posix() in bad:
            continue
        rate, frames, size, sample_rate = video_info(clip)
        rates.add(rate)
        assert rate in (25, 30) and size == (160, 160) and sample_rate == 44100
        assert frames == round((float(end) - float(start)) * rate) and 2.0 <= frames / rate <= 3.0
    assert missing == 1 and rates == {25, 30}
    ids = [r[0] for r in rows["train"]]
    assert len(set(ids)) < len(ids)  # a video gives several segments
    assert not {r[0] for r in rows["train"]} & {r[0] for r in rows["test"]}
    assert sorted(p.name for p in (root / "clips").glob("*.mp4")) == sorted(
        f"{r[0]}_{r[1]}.mp4"
        for r in rows["train"] + rows["test"]
        if (root / "clips" / f"{r[0]}_{r[1]}.mp4").exists()
    )


def test_avspeech_broken_clips_have_rows_and_generation_is_deterministic(datasets):
    root, clean = datasets["avspeech"]
    bad = broken_paths(root)
    assert sorted(bad.values()) == ["junk_file", "no_face_video", "truncated_video", "two_faces"]
    listed = {f"clips/{r[0]}_{r[1]}.mp4" for r in read_rows(root, "train")}
    assert all(path in listed for path, defect in bad.items() if defect != "junk_file")
    rate, frames, size, _ = video_info(next(root / p for p, d in bad.items() if d == "two_faces"))
    assert (rate, frames, size) == (25, 50, (160, 160))
    clean_rows = (clean / "avspeech_train.csv").read_bytes()
    assert (root / "avspeech_train.csv").read_bytes().startswith(clean_rows)  # bad rows are appended
    assert (root / "avspeech_test.csv").read_bytes() == (clean / "avspeech_test.csv").read_bytes()
    assert same_files(clean, root, "clips/*.mp4")


# ----------------------------------------------------------------------------- TCD-TIMIT


def test_tcd_timit_layout(datasets):
    root, _ = datasets["tcd_timit"]
    volunteers = sorted((root / "volunteers").iterdir())
    assert [v.name[:2] for v in volunteers] == ["01", "02", "50", "51"]
    assert all(re.fullmatch(r"\d\d[MF]", v.name) for v in volunteers)
    for volunteer in volunteers:
        clips = [p for p in (volunteer / "Clips" / "straightcam").glob("*.mp4") if is_good(root, p)]
        assert len(clips) == 2 and all(re.fullmatch(r"sa[12]|si\d{3,4}|sx\d{1,3}", c.stem) for c in clips)
        for clip in clips:
            assert video_info(clip) == (NTSC, 60, (320, 180), 48000)
            wav = clip.with_suffix(".wav")
            assert wav.exists() == (volunteer.name[:2] in {"01", "50"})  # wav siblings for some only
            if wav.exists():
                info = sf.info(wav)
                assert info.samplerate == 48000 and info.frames == round(60 / NTSC * 48000)


def test_tcd_timit_broken_files(datasets):
    root, _ = datasets["tcd_timit"]
    bad = broken_paths(root)
    assert sorted(bad.values()) == ["junk_file", "no_face_video", "truncated_video"]
    no_face = next(root / p for p, d in bad.items() if d == "no_face_video")
    assert video_info(no_face)[0] == NTSC


# ----------------------------------------------------------------------------- LRW and GRID additions


def test_lrw_wrong_fps_clip(tmp_path):
    root = generate_dataset("lrw", tmp_path / "lrw", size="tiny", broken=True)
    wrong = next(root / p for p, d in broken_paths(root).items() if d == "wrong_fps")
    rate, frames, size, sample_rate = video_info(wrong)
    assert (rate, frames, size, sample_rate) == (15, 17, (96, 96), 16000)
    assert wrong.with_suffix(".txt").read_text().startswith("Text:  ")


def test_grid_short_audio(tmp_path):
    root = generate_dataset("grid", tmp_path / "grid", size="tiny", broken=True)
    assert sorted(broken_paths(root).values()) == ["junk_file", "short_audio", "truncated_video"]
    wav = next(root / p for p, d in broken_paths(root).items() if d == "short_audio")
    assert sf.info(wav).samplerate == 25000 and sf.info(wav).frames == 25000
    speaker, utterance = wav.parent.name, wav.stem
    assert video_info(root / speaker / f"{utterance}.mpg")[1] == 75
    assert (root / "align" / speaker / f"{utterance}.align").read_text().splitlines()[-1].split()[
        1
    ] == "75000"
