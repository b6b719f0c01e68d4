"""`make eval` draws one picture of whether the output follows the speech (`speech_dependence_*.png`)."""

import numpy as np
from PIL import Image

from lightning_modules.common.metrics.metric_suite import GeneratedSample
from lightning_modules.common.metrics.speech_picture import SpeechPicture
from tests.common.test_shared_metrics import face_crop

FRAMES = 20


def no_face(frame):
    return None  # the region measure then locates the mouth in the frame's lower middle


def clip_sample(mouth_open: np.ndarray, control: np.ndarray) -> GeneratedSample:
    def frames(openness):
        clip = np.repeat(face_crop(64)[None], len(openness), axis=0).copy()
        for t, amount in enumerate(openness):  # a darker mouth region = a more open mouth
            clip[t, 40:50, 22:42] = (clip[t, 40:50, 22:42] * (1 - 0.8 * amount)).astype(np.uint8)
        return clip

    energy = np.repeat(mouth_open, 640).astype(np.float32) * np.sin(np.arange(FRAMES * 640)).astype(
        np.float32
    )
    return GeneratedSample(
        frames(mouth_open), frames(mouth_open), "s1_clip", speech=energy, control=frames(control)
    )


def test_a_video_system_gets_mouth_crops_above_the_traces_against_the_speech(tmp_path):
    opening = (np.sin(np.linspace(0, 4 * np.pi, FRAMES)) + 1) / 2
    drawer = SpeechPicture(no_face)
    samples = [clip_sample(opening, np.full(FRAMES, 0.5))]
    assert list(drawer.passing(samples)) == samples  # the evaluation's samples pass through unchanged
    path = drawer.write(tmp_path / "speech_dependence.png")
    width, height = Image.open(path).size
    assert width > 600 and height > 400


def test_a_face_system_gets_generated_faces_above_real_ones_and_nothing_usable_draws_nothing(tmp_path):
    face = face_crop(64)[None]
    drawer = SpeechPicture(no_face)
    list(drawer.passing([GeneratedSample(face, face, f"id{k}", paired=False) for k in range(3)]))
    assert drawer.write(tmp_path / "faces.png").exists()
    empty = SpeechPicture(no_face)
    list(empty.passing([GeneratedSample(face, face, "only one", paired=False)]))
    assert empty.write(tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
