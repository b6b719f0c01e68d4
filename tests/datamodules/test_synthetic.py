"""The synthetic dataset generator: determinism, real on-disk layouts, detectable faces, a learnable
voice ↔ face tie, lip-sync, atomic generation and the deliberately broken files."""

import csv
import json

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from scipy import stats

from datamodules.synthetic import ensure_dataset, generate_dataset, layouts
from datamodules.synthetic.faces import render_face_crop, render_frame
from datamodules.synthetic.speakers import make_speakers
from datamodules.synthetic.speech import mouth_opening, synthesize_utterance
from datamodules.synthetic.video_layouts import GRID_GRAMMAR, grid_utterance_id

TINY_SPEAKERS = 20


@pytest.fixture(scope="module")
def clean_vox(tmp_path_factory):
    return generate_dataset("hq_voxceleb", tmp_path_factory.mktemp("clean") / "vox", size="tiny", seed=0)


@pytest.fixture(scope="module")
def broken_vox(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken") / "vox"
    return generate_dataset("hq_voxceleb", root, size="tiny", broken=True)


def media_files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in {".wav", ".jpg"})


def marker(root):
    return json.loads((root / ".synthetic.json").read_text())


def estimate_f0(wave, sample_rate, frame=1024):
    """Median autocorrelation pitch (60–400 Hz) over the loud frames."""
    lo, hi, estimates = sample_rate // 400, sample_rate // 60, []
    for start in range(0, len(wave) - frame, frame):
        x = wave[start : start + frame] - wave[start : start + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.05:
            continue
        correlation = np.correlate(x, x, "full")[frame - 1 :]
        estimates.append(sample_rate / (lo + np.argmax(correlation[lo:hi])))
    return float(np.median(estimates))


def skin_hue_deg(crop):
    """Hue angle about the grey axis of the mean colour of the crop's central (skin) region."""
    h, w = crop.shape[:2]
    r, g, b = crop[h * 2 // 5 : h * 3 // 5, w * 2 // 5 : w * 3 // 5].reshape(-1, 3).mean(0)
    return float(np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)))


# ----------------------------------------------------------------------------- determinism and layout


def test_same_seed_gives_identical_bytes_and_another_seed_differs(clean_vox, broken_vox, tmp_path):
    files = media_files(clean_vox)
    # The broken run adds files but must not disturb the good ones.
    assert set(files) <= set(media_files(broken_vox))
    assert all((clean_vox / f).read_bytes() == (broken_vox / f).read_bytes() for f in files)
    other = generate_dataset("hq_voxceleb", tmp_path / "seed1", size="tiny", seed=1)
    faces = sorted(other.glob("vox1/masked_faces/*/0.jpg"))
    assert faces[0].read_bytes() != (clean_vox / faces[0].relative_to(other)).read_bytes()
    wav_of = lambda root: sorted(root.glob("vox1/wav/id10001/*/00001.wav"))[0].read_bytes()  # noqa: E731
    assert wav_of(other) != wav_of(clean_vox)


def test_hq_voxceleb_layout(clean_vox):
    rows = list(csv.reader((clean_vox / "vox1_meta.csv").read_text().splitlines(), delimiter="\t"))
    assert rows[0] == ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"]
    assert [r[0] for r in rows[1:]] == [f"id{10001 + i}" for i in range(TINY_SPEAKERS)]
    for speaker_id, name, *_ in rows[1:]:
        faces = sorted((clean_vox / "vox1" / "masked_faces" / name).iterdir())
        assert [f.name for f in faces] == ["0.jpg", "1.jpg", "2.jpg"]
        assert Image.open(faces[0]).size == (96, 96)
        wavs = sorted((clean_vox / "vox1" / "wav" / speaker_id).glob("*/*.wav"))
        assert len(wavs) == 3 and all(len(w.parent.name) == 11 and w.stem.isdigit() for w in wavs)
        for wav in wavs:
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert 2.0 <= info.duration <= 3.0
    assert marker(clean_vox)["counts"] == {"speakers": 20, "faces": 60, "utterances": 60}
    assert marker(clean_vox)["broken"] == []


def test_lrw_layout_and_truncated_video(tmp_path):
    root = generate_dataset("lrw", tmp_path / "lrw", size="tiny", broken=True)
    broken = {e["path"]: e["defect"] for e in marker(root)["broken"]}
    clips = sorted(
        p for p in root.glob("lipread_mp4/*/*/*.mp4") if p.relative_to(root).as_posix() not in broken
    )
    assert len(clips) == marker(root)["counts"]["videos"] == 12
    word, split = clips[0].parts[-3], clips[0].parts[-2]
    assert split in {"train", "val", "test"} and clips[0].name == f"{word}_00001.mp4"
    with av.open(str(clips[0])) as container:
        assert container.streams.video[0].average_rate == 25 and container.streams.audio
        assert container.streams.audio[0].sample_rate == 16000
        assert sum(1 for _ in container.decode(video=0)) == 29
    text = clips[0].with_suffix(".txt").read_text()
    assert f"Text:  {word}" in text and 0.1 < float(text.split("Duration:")[1].split()[0]) < 1.16
    assert sorted(broken.values()) == ["junk_file", "truncated_video", "wrong_fps"]
    truncated = next(root / p for p, d in broken.items() if d == "truncated_video")
    with pytest.raises(av.error.FFmpegError):
        with av.open(str(truncated)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 29


def test_grid_layout(tmp_path):
    root = generate_dataset("grid", tmp_path / "grid", size="tiny")
    videos = sorted(root.glob("s*/*.mpg"))
    assert len(videos) == 9  # 3 speakers × 3 utterances
    for video in videos:
        speaker, utterance = video.parent.name, video.stem
        with av.open(str(video)) as container:
            assert container.streams.audio and sum(1 for _ in container.decode(video=0)) == 75
        info = sf.info(root / "audio_25k" / speaker / f"{utterance}.wav")
        assert info.samplerate == 25000 and info.duration == pytest.approx(3.0)
        align = (root / "align" / speaker / f"{utterance}.align").read_text()
        lines = [line.split() for line in align.splitlines()]
        starts, ends = [int(a) for a, _, _ in lines], [int(b) for _, b, _ in lines]
        assert starts[0] == 0 and ends[-1] == 75000 and starts[1:] == ends[:-1]
        words = [w for _, _, w in lines if w not in {"sil", "sp"}]
        assert lines[0][2] == lines[-1][2] == "sil" and len(words) == len(GRID_GRAMMAR)
        assert grid_utterance_id(words) == utterance


# ----------------------------------------------------------------------------- faces


def test_face_crops_are_found_by_dlib(clean_vox):
    import dlib

    detector = dlib.get_frontal_face_detector()
    crops = sorted(clean_vox.glob("vox1/masked_faces/*/0.jpg"))[:8]
    found = [len(detector(np.asarray(Image.open(c).convert("RGB")), 1)) for c in crops]
    assert all(n >= 1 for n in found), found


def test_rendered_frame_is_found_by_mtcnn():
    from facenet_pytorch import MTCNN

    speaker = make_speakers(TINY_SPEAKERS, seed=0)[3]
    frame = render_frame(speaker, 0.5, 160, np.random.default_rng(0))
    boxes, probs = MTCNN(keep_all=True, device="cpu").detect(Image.fromarray(frame))
    assert boxes is not None and float(np.max(probs)) > 0.9


def test_open_mouth_changes_the_mouth_only():
    speaker = make_speakers(TINY_SPEAKERS, seed=0)[5]
    # The same rng seed gives the same pose and lighting, so only the mouth opening differs.
    closed, opened = (
        render_face_crop(speaker, o, 128, np.random.default_rng(1)).astype(float) for o in (0.0, 1.0)
    )
    difference = np.abs(opened - closed).sum(-1)
    mouth_and_jaw = np.zeros_like(difference, dtype=bool)
    mouth_and_jaw[64:, 32:96] = True  # below the face centre, where mouth and chin land for every speaker
    assert difference[mouth_and_jaw].mean() > 10.0
    assert difference[mouth_and_jaw].sum() / difference.sum() > 0.99
    assert difference[:56].max() == 0  # eyes, nose and hair do not move


# ----------------------------------------------------------------------------- voice and lip-sync


def test_pitch_matches_the_profile():
    speakers = make_speakers(TINY_SPEAKERS, seed=0)
    for speaker in (min(speakers, key=lambda s: s.f0_hz), max(speakers, key=lambda s: s.f0_hz), speakers[0]):
        utterance = synthesize_utterance(speaker, 3.0, 16000, np.random.default_rng(2))
        assert estimate_f0(utterance.wave, 16000) == pytest.approx(speaker.f0_hz, rel=0.1)


def test_voice_and_face_are_tied():
    speakers = make_speakers(TINY_SPEAKERS, seed=0)
    pitches = [
        estimate_f0(synthesize_utterance(s, 2.0, 16000, np.random.default_rng(3)).wave, 16000)
        for s in speakers
    ]
    hues = [skin_hue_deg(render_face_crop(s, 0.0, 96, np.random.default_rng(4))) for s in speakers]
    assert stats.spearmanr(pitches, hues).statistic > 0.8  # measured from audio and pixels
    assert stats.spearmanr([s.formant_scale for s in speakers], [s.scale for s in speakers]).statistic < -0.8
    rates, saturations = [s.syllable_rate_hz for s in speakers], [s.saturation for s in speakers]
    assert stats.spearmanr(rates, saturations).statistic > 0.8
    assert len({(round(s.f0_hz, 3), s.scale) for s in speakers}) == TINY_SPEAKERS  # all distinct


def test_mouth_opening_follows_the_speech_envelope():
    speaker = make_speakers(TINY_SPEAKERS, seed=0)[7]
    utterance = synthesize_utterance(speaker, 4.0, 16000, np.random.default_rng(5))
    opening = mouth_opening(utterance, 25, 100)
    rms = np.sqrt((utterance.wave[: 100 * 640].reshape(100, 640) ** 2).mean(1))
    assert opening.shape == (100,) and 0.0 <= opening.min() and opening.max() <= 1.0
    assert stats.pearsonr(rms, opening).statistic > 0.5


def _syllable_rms(utterance):
    """(vowel, peak RMS over the vowel's middle third) of each syllable."""
    rate, rows = utterance.sample_rate, []
    for syllable in utterance.syllables:
        start = syllable.start_s + syllable.onset_s + syllable.vowel_s / 3
        middle = utterance.wave[round(start * rate) : round((start + syllable.vowel_s / 3) * rate)]
        rows.append((syllable.vowel, float(np.sqrt((middle.astype(np.float64) ** 2).mean()))))
    return rows


def test_lips_articulation_draws_loudness_apart_from_the_vowel():
    """`jaw` speech is louder on open vowels, so loudness tells the opening; `lips` speech is not."""
    from datamodules.synthetic.speech import VOWEL_OPENNESS

    speaker = make_speakers(TINY_SPEAKERS, seed=0)[3]
    for articulation, tied in (("jaw", True), ("lips", False)):
        rows = []
        for seed in range(6):
            utterance = synthesize_utterance(
                speaker, 8.0, 16000, np.random.default_rng(seed), articulation=articulation
            )
            rows += [
                (VOWEL_OPENNESS[v], rms / np.abs(utterance.wave).max()) for v, rms in _syllable_rms(utterance)
            ]
        r = stats.pearsonr(*zip(*rows)).statistic
        assert (r > 0.3) if tied else (abs(r) < 0.15), (articulation, r, len(rows))


def test_lips_articulation_shapes_the_lips_and_closes_them_for_bilabials():
    from datamodules.synthetic.speech import VOWEL_WIDTH, mouth_width

    speaker = make_speakers(TINY_SPEAKERS, seed=0)[3]
    utterance = synthesize_utterance(speaker, 8.0, 16000, np.random.default_rng(7), articulation="lips")
    assert {s.onset for s in utterance.syllables} == {"none", "fricative", "bilabial"}
    rate = utterance.sample_rate
    for syllable in utterance.syllables:
        peak = round((syllable.start_s + syllable.onset_s + syllable.vowel_s / 2) * rate)
        if peak < len(utterance.width):  # at the vowel's middle the lips take its width
            assert utterance.width[peak] == pytest.approx(VOWEL_WIDTH[syllable.vowel], abs=0.03)
        if syllable.onset == "bilabial":  # lips shut through the closure, then a burst as they part
            closure = slice(
                round(syllable.start_s * rate) + 1, round((syllable.start_s + syllable.onset_s) * rate) - 1
            )
            assert utterance.mouth[closure].max() < 0.05
    widths = mouth_width(utterance, 25, 200)
    assert widths.shape == (200,) and widths.min() < 0.9 and widths.max() > 1.1
    jaw = synthesize_utterance(speaker, 2.0, 16000, np.random.default_rng(7))
    assert jaw.width is None and np.all(mouth_width(jaw, 25, 50) == 1.0)


def test_rendered_lip_width_is_what_face_landmarks_measure():
    """Spread (i) and rounded (u) lips, rendered, move the landmark mouth width the way the truth says."""
    from datamodules.pipeline.faces import LandmarkPredictor, build_detector

    detector, landmarks = build_detector("dlib"), LandmarkPredictor()
    speaker = make_speakers(TINY_SPEAKERS, seed=0)[5]
    measured = []
    for width in (0.78, 1.0, 1.18):
        frame = render_frame(speaker, 0.4, 256, np.random.default_rng(1), width=width)
        (face,) = detector(frame)
        points = landmarks(frame, face.box)
        measured.append(np.linalg.norm(points[54] - points[48]) / np.linalg.norm(points[45] - points[36]))
    assert measured[0] < measured[1] - 0.05 and measured[2] > measured[1] + 0.03, measured
    rest = render_frame(speaker, 0.4, 256, np.random.default_rng(1))
    assert np.array_equal(rest, render_frame(speaker, 0.4, 256, np.random.default_rng(1), width=1.0))


@pytest.mark.parametrize(
    ("layout", "clips", "frames"), [("lrw", "lipread_mp4/*/*/*.mp4", 29), ("grid", "s*/*.mpg", 75)]
)
def test_a_lips_dataset_keeps_the_real_layout_and_records_each_clips_mouth(layout, clips, frames, tmp_path):
    from datamodules.synthetic.dataset import is_generated, read_marker
    from datamodules.synthetic.truth import TRUTH_FOLDER, read_truth

    root = generate_dataset(layout, tmp_path / layout, size="tiny", articulation="lips")
    videos = sorted(root.glob(clips))
    assert videos and len(list((root / TRUTH_FOLDER).rglob("*.csv"))) == len(videos)
    for video in videos[:3]:
        opening, width = read_truth(root, video)
        with av.open(str(video)) as container:
            assert len(opening) == frames == sum(1 for _ in container.decode(video=0))
        assert 0.0 <= opening.min() and opening.max() <= 1.0 and width.min() < 1.0 < width.max()
    assert read_marker(root)["articulation"] == "lips"
    assert is_generated(root, layout, "tiny", articulation="lips") and not is_generated(root, layout, "tiny")


def _split_clips(layout: str, root, split: str) -> list:
    """The clips of one split of a generated LRW or AVSpeech tree."""
    if layout == "lrw":
        return sorted(root.glob(f"lipread_mp4/*/{split}/*.mp4"))
    from datamodules.synthetic.clip_layouts import avspeech_clip_path

    rows = [row.split(",") for row in (root / f"avspeech_{split}.csv").read_text().splitlines()]
    return [path for path in (avspeech_clip_path(root, r[0], r[1]) for r in rows) if path.is_file()]


@pytest.mark.parametrize("layout", ["lrw", "avspeech"])
def test_a_lips_datasets_test_clips_are_spoken_by_speakers_never_trained_on(layout, tmp_path):
    """The learning proofs score `lips` data: its test speakers must be new to the model (LRW has no
    identity labels, so the truth files name the speaker)."""
    from datamodules.synthetic.truth import truth_speaker

    root = generate_dataset(layout, tmp_path / layout, size="tiny", articulation="lips")
    train, test = ({truth_speaker(root, c) for c in _split_clips(layout, root, s)} for s in ("train", "test"))
    assert train and test and not train & test


# ----------------------------------------------------------------------------- atomicity, reuse, broken files


def test_a_crash_leaves_no_dataset(tmp_path, monkeypatch):
    real_write_wav, calls = layouts.write_wav, []

    def failing_write_wav(*args, **kwargs):
        calls.append(args[0])
        if len(calls) > 5:
            raise RuntimeError("disk full")
        real_write_wav(*args, **kwargs)

    monkeypatch.setattr(layouts, "write_wav", failing_write_wav)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_dataset("hq_voxceleb", tmp_path / "vox", size="tiny")
    assert list(tmp_path.iterdir()) == []  # neither the dataset nor its build folder


def test_ensure_reuses_a_complete_dataset(clean_vox):
    wav = next(clean_vox.glob("vox1/wav/*/*/*.wav"))
    stamps = [(clean_vox / ".synthetic.json").stat().st_mtime_ns, wav.stat().st_mtime_ns]
    assert ensure_dataset("hq_voxceleb", clean_vox, size="tiny", seed=0) == clean_vox
    assert [(clean_vox / ".synthetic.json").stat().st_mtime_ns, wav.stat().st_mtime_ns] == stamps


def test_other_folders_are_never_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        ensure_dataset("hq_voxceleb", tmp_path / "mine", size="tiny")
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def test_broken_files_have_their_defects(broken_vox):
    import dlib

    entries = {e["defect"]: broken_vox / e["path"] for e in marker(broken_vox)["broken"]}
    assert set(entries) == {"truncated_wav", "silent_wav", "too_short_wav", "no_face_image", "junk_file"}
    with pytest.raises(sf.LibsndfileError):
        sf.read(entries["truncated_wav"])
    assert not sf.read(entries["silent_wav"])[0].any()
    assert sf.info(entries["too_short_wav"]).duration == pytest.approx(0.2)
    no_face = np.asarray(Image.open(entries["no_face_image"]).convert("RGB"))
    assert len(dlib.get_frontal_face_detector()(no_face, 1)) == 0
    junk = entries["junk_file"]
    assert junk.name.startswith(".") and junk.parent.name.startswith("Demo_Speaker")


def test_a_datamodule_generates_its_demo_data_with_the_articulation_asked_for():
    from datamodules.lrw import LRWDataModule
    from datamodules.synthetic.truth import TRUTH_FOLDER

    lips = LRWDataModule(demo_size="tiny", demo_articulation="lips")
    assert lips.root.parent.name == "tiny-lips" and any((lips.root / TRUTH_FOLDER).rglob("*.csv"))
    assert "lips articulation" in lips.description
    assert LRWDataModule(demo_size="tiny").root.parent.name == "tiny"  # the default stays where it was
    fresh = LRWDataModule(demo_size="tiny", demo_articulation="lips", demo_seed=1)
    assert fresh.root.parent.name == "tiny-lips-seed1" and "seed 1" in fresh.description
    first = sorted(fresh.root.rglob("*.mp4"))[0]
    assert first.read_bytes() != (lips.root / first.relative_to(fresh.root)).read_bytes()
