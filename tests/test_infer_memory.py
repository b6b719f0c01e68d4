"""`make infer`'s memory does not grow with the speech's length: frames go to the mp4 encoder as they are
made, and features, fusion and resampling run in pieces.

Measured as `python -m benchmarks.infer_memory` measures it (a fresh process per input, peak resident memory
above the built and warmed-up model), at a narrow width so that minutes of speech take seconds. Holding the
video whole would cost at least its uint8 frames; the bar is half of that. The shorter input is a whole
minute, so that both runs hold the same bounded working buffers (a minute of MFCC framing, a minute of
resampling): what differs is only what grows with the length.
"""

from __future__ import annotations

import pytest

from benchmarks.infer_memory import MIB, measure

FRAME_BYTES = {"e2e_nr": 128 * 128 * 3, "tcsan": 112 * 112 * 3}


@pytest.mark.parametrize("system", ["e2e_nr", "tcsan"])
def test_peak_memory_does_not_grow_with_the_length_of_the_speech(system):
    short, long = (measure(system, minutes, width=0.125, threads=1) for minutes in (1.0, 3.5))
    assert long["frames"] == 5250 and short["frames"] == 1500
    grown = long["above model MiB"] - short["above model MiB"]
    frames_alone = (long["frames"] - short["frames"]) * FRAME_BYTES[system] / MIB
    assert grown < frames_alone / 2, (
        f"{system}: 3.5 min of speech peaked {grown:.0f} MiB above 1 min; its extra frames alone are "
        f"{frames_alone:.0f} MiB, so the video is being held whole"
    )
