"""Per-frame AU labels: the landmark-geometry approximation, OpenFace CSVs, and their use in items."""

import numpy as np
import pytest

from datamodules.errors import DatasetError
from datamodules.pipeline.action_units import (
    AU_NAMES,
    AULabelConfig,
    GeometryLabels,
    build_labeler,
    class_rates,
    read_openface_csv,
)
from datamodules.pipeline.template import E2E_TEMPLATE_68


def resting_clip(frames=20):
    return np.repeat(np.asarray(E2E_TEMPLATE_68, np.float64)[None], frames, axis=0)


def test_a_still_face_has_no_speech_aus():
    clip = resting_clip()
    labels, valid = GeometryLabels().labels("clip", clip, np.ones(len(clip), bool))
    assert labels.shape == (20, 5) and valid.all()
    assert labels[:, [0, 2, 4]].sum() == 0  # no lip raise, stretch or jaw drop against its own baseline


def test_parting_the_lips_and_dropping_the_jaw_set_au25_and_au26():
    clip = resting_clip()
    iod = np.linalg.norm(clip[0, 36] - clip[0, 45])
    clip[10:15, [65, 66, 67], 1] += 0.1 * iod  # inner lower lip down: lips part
    clip[10:15, 5:12, 1] += 0.1 * iod  # chin and lower jaw down
    clip[10:15, [8], 1] += 0.1 * iod
    labels, _ = GeometryLabels().labels("clip", clip, np.ones(len(clip), bool))
    au25, au26 = AU_NAMES.index("AU25"), AU_NAMES.index("AU26")
    assert labels[10:15, au25].all() and labels[10:15, au26].all()
    assert not labels[:10, au26].any() and not labels[15:, au26].any()


def test_undetected_frames_are_not_valid_and_do_not_set_baselines():
    clip = resting_clip()
    clip[:5] = 0  # garbage landmarks on frames without a face
    detected = np.arange(20) >= 5
    labels, valid = GeometryLabels().labels("clip", clip, detected)
    assert (valid == detected).all()
    assert GeometryLabels().labels("clip", clip, np.zeros(20, bool))[1].sum() == 0


def write_openface(path, rows):
    header = "frame, face_id, timestamp, confidence, success, " + ", ".join(f"{a}_c" for a in AU_NAMES)
    path.write_text(header + "\n" + "\n".join(", ".join(str(v) for v in row) for row in rows) + "\n")


def test_openface_csv_is_read_with_spaces_in_its_header_and_low_confidence_masked(tmp_path):
    csv = tmp_path / "s1" / "bbaf2n.csv"
    csv.parent.mkdir()
    write_openface(
        csv,
        [
            (2, 0, 0.04, 0.98, 1, 1, 0, 0, 1, 1),
            (1, 0, 0.0, 0.5, 1, 0, 0, 1, 0, 0),
            (3, 0, 0.08, 0.9, 0, 1, 1, 1, 1, 1),
        ],
    )
    labels, valid = read_openface_csv(csv)
    assert labels.tolist() == [[0, 0, 1, 0, 0], [1, 0, 0, 1, 1], [1, 1, 1, 1, 1]]  # sorted by frame
    assert valid.tolist() == [False, True, False]  # confidence 0.5 < 0.8; success 0
    labeler = build_labeler(AULabelConfig(source="openface", openface_dir=str(tmp_path)))
    assert labeler.labels("s1/bbaf2n", None, np.ones(3, bool))[0].shape == (3, 5)
    with pytest.raises(DatasetError, match="3 rows for a clip of 4 frames"):
        labeler.labels("s1/bbaf2n", None, np.ones(4, bool))
    with pytest.raises(DatasetError, match="s1/other.csv: OpenFace CSV not found; run OpenFace"):
        labeler.labels("s1/other", None, np.ones(3, bool))


def test_openface_csv_without_au_columns_names_the_fix(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("frame, success, confidence\n1, 1, 0.9\n")
    with pytest.raises(DatasetError, match="missing columns .*AU10_c.*-aus"):
        read_openface_csv(bad)
    with pytest.raises(ValueError, match="openface_dir"):
        AULabelConfig(source="openface")


def test_rates_use_valid_frames_only():
    labels = np.array([[1, 0, 0, 1, 1], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    assert class_rates(labels, np.array([True, True, False])).tolist() == [1.0, 0.0, 0.0, 0.5, 1.0]


def test_tcsan_splits_hold_out_6_of_33_grid_speakers_and_10_of_59_tcd_volunteers(tmp_path):
    from datamodules.grid import speaker_split
    from datamodules.tcd_timit import volunteer_split

    grid = [f"s{n}" for n in range(1, 35) if n != 21]  # s21 has no video
    splits = [speaker_split(tmp_path, speaker, "tcsan") for speaker in grid]
    assert splits.count("train") == 27 and splits.count("test") == 6
    volunteers = [f"{n:02d}{'M' if n % 2 else 'F'}" for n in range(1, 60)]
    tcd = [volunteer_split(tmp_path, volunteer) for volunteer in volunteers]
    assert tcd.count("train") == 49 and tcd.count("test") == 10
    assert all(split == "test" for volunteer, split in zip(volunteers, tcd) if int(volunteer[:2]) >= 50)
