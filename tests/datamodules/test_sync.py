"""Audio ↔ frame arithmetic: every system's per-frame window, checked sample by sample."""

from fractions import Fraction

import numpy as np
import pytest

from datamodules.pipeline.sync import (
    feature_window,
    fit_length,
    frame_start_sample,
    frames_span,
    num_samples,
    take,
)
from datamodules.pipeline.video import DecodedVideo, convert_fps, parse_fps, resample_frame_indices

NTSC = Fraction(30000, 1001)


def test_e2e_nr_frames_own_320_samples_at_8khz_and_windows_sit_on_320t():
    # docs/e2e_nr.md: one frame = 320 samples; frame t's receptive field is [320t − 1435, 320t + 1435].
    assert [frame_start_sample(t, Fraction(25), 8000) for t in range(4)] == [0, 320, 640, 960]
    assert num_samples(29, Fraction(25), 8000) == 9280  # a whole LRW clip


def test_a2v_audio_is_640_samples_per_frame_at_16khz():
    assert frames_span(10, 5, Fraction(25), 16000) == (6400, 6400 + 5 * 640)


@pytest.mark.parametrize("width", [28, 20, 36])
def test_tcsan_mfcc_windows_at_25fps_are_4k_plus_2_centred(width):
    # docs/tcsan.md: c_k = 4k + 2, so the 28-column window of frame k is [4k − 12, 4k + 16).
    for k in range(100):
        assert feature_window(k, Fraction(25), width) == (
            4 * k + 2 - width // 2,
            4 * k + 2 - width // 2 + width,
        )


def test_windows_never_drift_at_29_97_fps():
    # After an hour of NTSC video the frame starts are still exact (a float step of 533.87 would drift).
    frames = int(3600 * NTSC)
    assert frame_start_sample(frames, NTSC, 16000) == (frames * 16000 * 1001) // 30000
    spans = [frames_span(k, 1, NTSC, 16000) for k in range(1000)]
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # frames tile the audio without gaps
    assert {stop - start for start, stop in spans} == {533, 534}
    assert feature_window(1, NTSC, 28)[0] + 14 == 5  # round(100 · 1.5 / 29.97) = round(5.005)


def test_take_zero_fills_outside_the_array():
    array = np.arange(1, 6, dtype=np.float32)
    assert take(array, -2, 3).tolist() == [0, 0, 1, 2, 3]
    assert take(array, 3, 8).tolist() == [4, 5, 0, 0, 0]
    assert fit_length(array, 3).tolist() == [1, 2, 3]


def test_parse_fps_reads_ntsc_exactly():
    assert parse_fps(29.97) == NTSC and parse_fps("30000/1001") == NTSC and parse_fps(25) == 25


def test_fps_conversion_picks_the_frame_on_screen_at_each_output_frame_centre():
    # 30 → 25 fps: output frame k's centre (k + ½)/25 s shows source frame floor((k + ½) · 1.2).
    assert resample_frame_indices(30, Fraction(30), Fraction(25)).tolist() == [
        int((k + 0.5) * 1.2) for k in range(25)
    ]
    assert resample_frame_indices(25, Fraction(25), Fraction(50)).tolist() == [k // 2 for k in range(50)]
    video = DecodedVideo(
        np.arange(60)[:, None, None, None].astype(np.uint8) * np.ones((1, 2, 2, 3), np.uint8), Fraction(30)
    )
    converted = convert_fps(video, Fraction(25))
    assert converted.fps == 25 and len(converted.frames) == 50 and converted.seconds == video.seconds
