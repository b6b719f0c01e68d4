"""Each system's LightningModule meets the typed contract `make eval` and `make infer` rely on."""

import pytest

from lightning_modules.a2v.module import Embed2LatModule, ResidualVAEModule
from lightning_modules.common.contracts import FaceSystem, PaperEvaluated, SharedEvaluated, VideoSystem
from lightning_modules.e2e_nr.module import E2ENRModule
from lightning_modules.sf2f.module import SF2FModule
from lightning_modules.tcsan.module import TCSANModule
from lightning_modules.wav2pix.module import Wav2PixModule


@pytest.mark.parametrize(
    ("system", "output"),
    [
        (SF2FModule, FaceSystem),
        (Wav2PixModule, FaceSystem),
        (E2ENRModule, VideoSystem),
        (TCSANModule, VideoSystem),
        (Embed2LatModule, VideoSystem),
    ],
)
def test_every_system_is_evaluated_and_generates_one_kind_of_output(system, output):
    assert issubclass(system, PaperEvaluated) and issubclass(system, SharedEvaluated)
    assert implements(system, output)
    other = VideoSystem if output is FaceSystem else FaceSystem
    assert not implements(system, other)


def test_a_stage_that_generates_nothing_is_not_a_generator():
    assert not implements(ResidualVAEModule, FaceSystem) and not implements(ResidualVAEModule, VideoSystem)


def implements(system: type, protocol: type) -> bool:
    """`issubclass` for a protocol with a data member (`speech_rate`), which `issubclass` refuses: the class
    has every method and attribute the protocol names."""
    members = set(protocol.__annotations__) | {
        name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")
    }
    return all(hasattr(system, name) for name in members)
