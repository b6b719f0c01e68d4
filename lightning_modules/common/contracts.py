"""What the commands ask of a system's LightningModule, as typed protocols checked with `isinstance`.

`make eval` scores a `PaperEvaluated` module with the paper's protocol and a `SharedEvaluated` one with the
shared metric suite; `make infer` drives a `FaceSystem` (one face from an utterance: SF2F, Wav2Pix) or a
`VideoSystem` (a talking-face video from speech and one face: E2E-NR, TCSAN, A2V). A system implements
these methods on its LightningModule; nothing else in the commands depends on which system it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .metrics.metric_suite import GeneratedSample
    from .metrics.reports import EvaluationReport


@runtime_checkable
class PaperEvaluated(Protocol):
    def paper_evaluation(self, datamodule, **options: Any) -> EvaluationReport:
        """The paper's own test protocol on the datamodule's test split; keyword options are the system's."""


@runtime_checkable
class SharedEvaluated(Protocol):
    def evaluation_samples(
        self, datamodule, split: str = "test", max_items: int | None = None
    ) -> Iterator[GeneratedSample]:
        """Generated outputs beside their ground truth and speech-dependence controls, for the suite."""


@runtime_checkable
class FaceSystem(Protocol):
    speech_rate: int
    """The sample rate in Hz of the speech the system takes."""

    def face_from_speech(self, speech: np.ndarray) -> np.ndarray:
        """`(L,)` float32 speech at `speech_rate` → `(H, W, 3)` uint8 RGB face, the speech prepared (voice
        activity, pre-emphasis) as the system's training data was."""


@runtime_checkable
class VideoSystem(Protocol):
    speech_rate: int
    """The sample rate in Hz of the speech the system takes."""

    def synthesise_chunks(
        self, speech: np.ndarray, face: np.ndarray, chunk_frames: int = 25, progress: bool = False
    ) -> Iterator[np.ndarray]:
        """`(L,)` float32 speech, an aligned `(H, W, 3)` uint8 face → the video's frames at 25 fps, in chunks
        `(t, H, W, 3)` uint8 of at most `chunk_frames`, each handed over as soon as it is made: memory stays
        bounded whatever the speech's length."""


class LinkedSpeechRate:
    """`speech_rate` for a LightningModule whose `sample_rate` argument is linked from its datamodule."""

    @property
    def speech_rate(self) -> int:
        return int(self.hparams.sample_rate)


def whole_video(chunks: Iterable[np.ndarray]) -> np.ndarray:
    """The chunks of `VideoSystem.synthesise_chunks` as one `(T, H, W, 3)` array, for short clips."""
    return np.concatenate(list(chunks))
