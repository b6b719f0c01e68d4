"""The proofs' interval resamples speakers, not only clips: a fast check of `bootstrap_interval`."""

import numpy as np
import pytest

from tests.learning.intervals import ClipScores, bootstrap_interval


def scores(speaker_spread: float, clips: int = 4) -> list[ClipScores]:
    rng = np.random.default_rng(0)
    offsets = speaker_spread * np.linspace(-1, 1, 5)
    return [
        ClipScores(
            seed, f"spk{speaker}", speaker * clips + clip, {"r": 0.6 + offsets[speaker] + 0.05 * rng.normal()}
        )
        for speaker in range(5)
        for clip in range(clips)
        for seed in range(3)
    ]


def test_the_interval_holds_the_mean_and_widens_with_the_spread_between_speakers():
    mean, low, high = bootstrap_interval(scores(0.0), "r")
    assert low < mean < high and high - low < 0.05
    _, wide_low, wide_high = bootstrap_interval(scores(0.2), "r")
    # five speakers up to 0.2 off: about 2 · 1.96 · 0.14 / √5 wide, clips alone would say ~0.03
    assert wide_high - wide_low > 3 * (high - low)


def test_more_clips_of_the_same_speakers_do_not_narrow_it_much():
    _, low_few, high_few = bootstrap_interval(scores(0.2, clips=2), "r")
    _, low_many, high_many = bootstrap_interval(scores(0.2, clips=20), "r")
    assert high_many - low_many > 0.6 * (high_few - low_few)


def test_a_key_no_clip_has_is_an_error():
    with pytest.raises(KeyError, match="no clip has"):
        bootstrap_interval(scores(0.0), "missing")
