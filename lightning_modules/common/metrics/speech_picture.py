"""One picture per evaluation that shows whether the output follows the speech (`speech_dependence.png`).

Video systems: mouth crops of a test clip's generated frames, its real frames and the same clip generated
from another clip's speech (the control), at evenly spaced times, above the mouth opening of each against
the clip's speech energy, all normalised to 0…1. A model that follows the speech draws a generated trace
that rises and falls with the energy as the real one does; the control's does not.

Face systems: faces generated from held-out speech of several speakers above a real face of each speaker.

Drawn from the first usable samples the evaluation produces, on the Agg canvas (no display needed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .plots import save_figure
from .speech_dependence import frame_energy, landmarks_found, mouth_box, opening_series

STRIP_FRAMES = 10
FACES = 8
MARGIN = 0.35  # the mouth crop extends the mouth box by this share of its size on every side


def _unit(values: np.ndarray) -> np.ndarray:
    spread = values.max() - values.min()
    return (values - values.min()) / spread if spread > 1e-9 else np.zeros_like(values)


def _crop(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The mouth box `(x0, y0, x1, y1)` of `mouth_box`, widened by `MARGIN` on every side."""
    x0, y0, x1, y1 = box
    pad_x, pad_y = int((x1 - x0) * MARGIN), int((y1 - y0) * MARGIN)
    height, width = frame.shape[:2]
    return frame[max(0, y0 - pad_y) : min(height, y1 + pad_y), max(0, x0 - pad_x) : min(width, x1 + pad_x)]


class SpeechPicture:
    """Pass the evaluation's samples through `passing`; `write(path)` then draws the picture, or says why
    not (returns None) when no sample could show it."""

    def __init__(self, detect: Callable[[np.ndarray], np.ndarray | None]):
        self.detect = detect
        self.clip = None
        self.faces: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def passing(self, samples: Iterable) -> Iterator:
        for sample in samples:
            self._keep(sample)
            yield sample

    def _keep(self, sample) -> None:
        if len(sample.generated) == 1:  # a face system: one face per speaker
            if sample.identity not in self.faces and len(self.faces) < FACES:
                self.faces[sample.identity] = (sample.generated[0], sample.real[0])
        elif self.clip is None and sample.control is not None and sample.speech is not None:
            if min(len(sample.generated), len(sample.real), len(sample.control)) >= STRIP_FRAMES:
                self.clip = sample

    def write(self, path: Path) -> Path | None:
        if self.clip is not None:
            return save_figure(self._clip_figure(), path)
        if len(self.faces) >= 2:
            return save_figure(self._face_figure(), path)
        return None

    def _clip_figure(self) -> Figure:
        sample = self.clip
        length = min(len(sample.generated), len(sample.real), len(sample.control))
        rows = {
            "generated": sample.generated[:length],
            "real": sample.real[:length],
            "other speech": sample.control[:length],
        }
        clip = f" (test clip of {sample.identity})" if sample.identity else ""
        return mouth_figure(
            rows,
            "real",
            sample.speech,
            sample.sample_rate,
            self.detect,
            f"Does the mouth follow the speech?{clip}",
        )

    def _face_figure(self) -> Figure:
        return face_figure(
            {identity[:12]: faces for identity, faces in self.faces.items()},
            ("from speech", "real"),
            "Faces generated from held-out speech (top) and the speakers' real faces",
        )


def mouth_figure(
    rows: dict[str, np.ndarray],
    box_row: str,
    speech: np.ndarray,
    rate: int,
    detect: Callable[[np.ndarray], np.ndarray | None],
    title: str,
) -> Figure:
    """Mouth crops of each clip in `rows` (name → `(T, H, W, 3)` uint8, equal T ≥ `STRIP_FRAMES`) at evenly
    spaced times, above each clip's mouth opening and the energy of `speech` `(L,)` at `rate`, all normalised
    to 0…1. The mouth box comes from `rows[box_row]`'s landmarks; every clip is measured the same way
    (`opening_series`). The first row is drawn boldest."""
    length = min(len(frames) for frames in rows.values())
    marks = {name: [detect(frame) for frame in frames[:length]] for name, frames in rows.items()}
    box = mouth_box(marks[box_row], rows[box_row].shape[1:3])
    landmarks = all(landmarks_found(found) for found in marks.values())
    traces = {
        name: _unit(opening_series(frames[:length], marks[name], box, landmarks))
        for name, frames in rows.items()
    }
    energy = _unit(frame_energy(speech, rate, length))
    times = np.linspace(0, length - 1, STRIP_FRAMES).round().astype(int)
    figure = Figure(figsize=(STRIP_FRAMES * 0.9, 1.0 * len(rows) + 2.2))
    grid = figure.add_gridspec(len(rows) + 1, STRIP_FRAMES, height_ratios=[1] * len(rows) + [2.2])
    for row, (name, frames) in enumerate(rows.items()):
        for column, t in enumerate(times):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(_crop(frames[t], box))
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
            if row == 0:
                axis.set_title(f"frame {t}", fontsize=7)
    plot = figure.add_subplot(grid[len(rows), :])
    plot.fill_between(np.arange(length), energy, color="0.85", label="speech energy")
    for index, ((name, trace), colour) in enumerate(zip(traces.items(), ("C0", "C2", "C3", "C1"))):
        plot.plot(trace, color=colour, linewidth=1.4 if index == 0 else 1.0, label=f"mouth: {name}")
    plot.set_xlabel("frame (25 fps)")
    plot.set_ylabel("normalised")
    plot.legend(fontsize=7, ncol=4, loc="upper right")
    figure.suptitle(title, fontsize=9)
    return figure


def face_figure(
    columns: dict[str, tuple[np.ndarray, ...]], row_labels: tuple[str, ...], title: str
) -> Figure:
    """A grid of faces: one column per entry of `columns` (title → one `(H, W, 3)` uint8 face per row),
    rows labelled by `row_labels`."""
    rows = len(row_labels)
    figure = Figure(figsize=(max(len(columns) * 1.1, 6.0), 0.5 + 1.15 * rows), layout="constrained")
    for column, (heading, faces) in enumerate(columns.items()):
        for row, (image, label) in enumerate(zip(faces, row_labels)):
            axis = figure.add_subplot(rows, len(columns), row * len(columns) + column + 1)
            axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(label, fontsize=7)
            if row == 0:
                axis.set_title(heading, fontsize=6)
    figure.suptitle(title, fontsize=9)
    return figure
