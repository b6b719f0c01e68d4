"""Face detection, landmarks and face tracks on a real photograph (`skimage.data.astronaut()`)."""

import numpy as np
import pytest
from skimage import data

from datamodules.errors import DatasetError
from datamodules.pipeline.face_tracks import (
    TEMPLATE_ANCHORS_128,
    FaceCropConfig,
    box_to_crop,
    crop_square,
    template_transform,
    track_boxes,
    track_faces,
)
from datamodules.pipeline.faces import (
    LEFT_EYE,
    NOSE,
    RIGHT_EYE,
    DlibDetector,
    Face,
    LandmarkPredictor,
    MtcnnDetector,
    build_detector,
)

ASTRONAUT_FACE = np.array([175, 76, 265, 166])  # dlib's box on the 512 px photo


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.fixture(scope="module")
def predictor():
    return LandmarkPredictor()


@pytest.mark.parametrize("name", ["dlib", "mtcnn"])
def test_both_detectors_find_the_astronaut_behind_one_interface(astronaut, name):
    faces = build_detector(name)(astronaut)
    assert faces and isinstance(faces[0], Face)
    centre = (faces[0].box[:2] + faces[0].box[2:]) / 2
    assert np.abs(centre - (ASTRONAUT_FACE[:2] + ASTRONAUT_FACE[2:]) / 2).max() < 15
    assert 70 < faces[0].side < 130


def test_detectors_find_nothing_in_noise():
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    assert DlibDetector()(noise) == [] and MtcnnDetector()(noise) == []


def test_dlib_downscales_large_frames_and_scales_boxes_back(astronaut):
    big = np.repeat(np.repeat(astronaut, 2, axis=0), 2, axis=1)  # 1024 px
    face = DlibDetector(max_side=512)(big)[0]
    assert np.abs(face.box - 2 * ASTRONAUT_FACE).max() < 20


def test_landmarks_are_68_points_inside_the_face(astronaut, predictor):
    marks = predictor(astronaut, ASTRONAUT_FACE)
    assert marks.shape == (68, 2)
    assert (marks[:, 0] > 160).all() and (marks[:, 0] < 280).all()
    # subject's right eye is on the image's left
    assert marks[RIGHT_EYE, 0].mean() < marks[LEFT_EYE, 0].mean()


def test_template_alignment_puts_eyes_and_nose_on_the_template(astronaut, predictor):
    marks = predictor(astronaut, ASTRONAUT_FACE)
    transform = template_transform(marks, 128)
    anchors = np.stack([marks[RIGHT_EYE].mean(0), marks[LEFT_EYE].mean(0), marks[NOSE].mean(0)])
    assert np.abs(transform(anchors) - TEMPLATE_ANCHORS_128).max() < 4  # 3-point least squares, not exact


def test_crop_square_pads_with_edges_and_maps_points(astronaut):
    corner = np.array([-20.0, -20.0, 20.0, 20.0])  # half outside the image
    crop = crop_square(astronaut, corner, scale=1.0, size=16)
    assert crop.shape == (16, 16, 3)
    assert (crop[0, 0] == astronaut[0, 0]).all()  # edge replication, not black
    assert np.allclose(box_to_crop(np.array([[0.0, 0.0]]), corner, 1.0, 16), [[8.0, 8.0]])


def test_box_tracks_median_interpolate_and_per_frame():
    found = {0: Face(np.array([0.0, 0, 10, 10]), 1.0), 10: Face(np.array([10.0, 0, 20, 10]), 1.0)}
    assert np.allclose(track_boxes(found, 11, "interpolate")[5], [5, 0, 15, 10])
    assert np.allclose(track_boxes(found, 11, "median")[0], [5, 0, 15, 10])
    assert np.allclose(track_boxes(found, 11, "per_frame")[4], [0, 0, 10, 10])


def _frames(image, count):
    return np.repeat(image[None], count, axis=0)


def test_template_track_crops_every_frame_with_landmarks(astronaut, predictor):
    track = track_faces(_frames(astronaut, 3), FaceCropConfig(), 128, DlibDetector(), predictor)
    assert track.crops.shape == (3, 128, 128, 3) and track.crops.dtype == np.uint8
    assert track.landmarks.shape == (3, 68, 2) and track.detected.all()
    mouth = track.landmarks[0, 48:68].mean(0)
    assert np.abs(mouth - [64, 80]).max() < 10  # the mouth lands near the template's mouth (63.9, 78.5)


def test_small_faces_do_not_count_and_no_face_is_a_clear_rejection(astronaut):
    config = FaceCropConfig(method="box", detector="mtcnn", min_face_px=200, landmarks=False)
    with pytest.raises(DatasetError, match="clip.png: a face of at least 200 px was found in 0 of 2"):
        track_faces(_frames(astronaut, 2), config, 64, MtcnnDetector(), None, "clip.png")


def test_two_faces_reject_single_face_clips_unless_a_hint_picks_one(astronaut):
    face = astronaut[60:190, 150:290]
    pair = np.concatenate([face, face[:, ::-1]], axis=1)  # two faces side by side
    config = FaceCropConfig(method="box", detector="dlib", single_face=True, landmarks=False)
    with pytest.raises(DatasetError, match="2 faces"):
        track_faces(_frames(pair, 2), config, 64, DlibDetector(), None, "two.mp4")
    hinted = FaceCropConfig(
        method="box", detector="dlib", single_face=True, landmarks=False, use_face_hint=True
    )
    track = track_faces(_frames(pair, 2), hinted, 64, DlibDetector(), None, "two.mp4", face_hint=(0.75, 0.5))
    assert track.boxes[0, 0] > pair.shape[1] / 2  # the right-hand face, where the hint points


@pytest.fixture(scope="module")
def clip_frames(isolated_data_and_runs):
    """Every 10th frame of a generated AVSpeech clip (a face that moves and talks), and a frame of noise."""
    import json

    from datamodules.pipeline.video import read_video
    from datamodules.synthetic import generate_dataset

    root = generate_dataset(
        "avspeech", isolated_data_and_runs / "fixtures" / "avspeech", size="tiny", broken=True
    )
    broken = {entry["path"] for entry in json.loads((root / ".synthetic.json").read_text())["broken"]}
    clip = next(p for p in sorted(root.rglob("*.mp4")) if str(p.relative_to(root)) not in broken)
    frames = read_video(clip).frames[::10][:6]
    noise = np.random.default_rng(0).integers(0, 255, frames[0].shape, dtype=np.uint8)
    return np.concatenate([frames, noise[None]])


class _BatchedMtcnn(MtcnnDetector):
    """MTCNN taking the GPU's batched path on the CPU."""

    batched = True


def test_mtcnn_batches_give_the_boxes_of_frame_by_frame_detection(clip_frames):
    """A GPU detects a clip's frames in batches; the batched networks must find what one frame at a time
    does (checked on the CPU, in batches of 4: one full and one partial)."""
    detector = MtcnnDetector(device="cpu", batch_size=4)
    assert not detector.batched and MtcnnDetector(device="cuda").batched
    one_by_one = [detector(frame) for frame in clip_frames]
    batched = detector.detect_batch(clip_frames)
    assert all(one_by_one[:-1]) and one_by_one[-1] == [] == batched[-1]  # faces in every frame, none in noise
    assert [len(faces) for faces in batched] == [len(faces) for faces in one_by_one]
    for single, together in zip(one_by_one, batched):
        for a, b in zip(single, together):
            np.testing.assert_allclose(b.box, a.box, atol=1e-3)
            assert abs(a.score - b.score) < 1e-5


def test_face_tracks_are_the_same_with_batched_detection(clip_frames):
    config = FaceCropConfig(method="box", detector="mtcnn", box_track="interpolate", detect_every=2)
    frames = clip_frames[:-1]
    alone = track_faces(frames, config, 64, MtcnnDetector(device="cpu"), None)
    together = track_faces(frames, config, 64, _BatchedMtcnn(device="cpu", batch_size=3), None)
    np.testing.assert_allclose(together.boxes, alone.boxes, atol=1e-3)
    np.testing.assert_array_equal(together.detected, alone.detected)
    assert np.abs(together.crops.astype(int) - alone.crops.astype(int)).max() <= 1
