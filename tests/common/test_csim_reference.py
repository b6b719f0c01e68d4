"""Known answer: our CSIM embeds faces as insightface's ArcFace code does, and its weights are checked.

The ArcFace file cannot be downloaded here and the `onnx` package is not installed, so the stand-in is a
small ONNX graph with ArcFace's layout (one `(N, 3, 112, 112)` input, one `(N, 16)` output), written byte by
byte below (`tiny_arcface`). The expected value was computed once with insightface's own
`model_zoo/arcface_onnx.py` (deepinsight/insightface at 7fadd420c2351d0ffa8cac403421c1a3ed733365:
`ArcFaceONNX(model_file).get_feat` on the frames as BGR images, as insightface reads them, and
`compute_sim`), with this file's stand-in and frames, each generated frame against its speaker's reference
(the renormalised mean of the unit real-frame embeddings, our pairing).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_modules.common.errors import WeightsError
from lightning_modules.common.metrics.face_similarity import ArcFaceSimilarity
from lightning_modules.common.metrics.metric_suite import GeneratedSample, MetricSettings, MetricSuite
from lightning_modules.common.pretrained.arcface import load_arcface

# insightface 7fadd420, run once on `faces()` with `tiny_arcface` (see the module docstring).
INSIGHTFACE_CSIM = -0.19831471302755957
SIDE, POOL, WIDTH = 112, 16, 16

# --- a minimal ONNX writer (protobuf wire format; field numbers from onnx.proto) ---------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    value = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def _tensor(name: str, array: np.ndarray) -> bytes:
    dims = b"".join(_int(1, d) for d in array.shape)
    return dims + _int(2, 1) + _bytes(8, name) + _bytes(9, array.astype("<f4").tobytes())  # 1: FLOAT


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, 1) + _bytes(2, shape)))


def _node(op: str, inputs: list[str], outputs: list[str], name: str, attributes: bytes = b"") -> bytes:
    names = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
    return names + _bytes(3, name) + _bytes(4, op) + attributes


def _ints_attribute(name: str, values: list[int]) -> bytes:
    return _bytes(5, _bytes(1, name) + b"".join(_int(8, v) for v in values) + _int(20, 7))  # 7: INTS


def tiny_arcface(path, side: int = SIDE) -> str:
    """A fixed ONNX graph with ArcFace's layout: 16×16 average pool, flatten, a 147→16 projection, tanh
    (`side`: another input side, for a model that is not ArcFace's)."""
    features = 3 * (side // POOL) ** 2
    weight = 0.2 * np.sin(np.arange(features * WIDTH) * 0.37).reshape(features, WIDTH)
    pool = _ints_attribute("kernel_shape", [POOL, POOL]) + _ints_attribute("strides", [POOL, POOL])
    nodes = [
        _node("AveragePool", ["input.1"], ["pooled"], "pool", pool),
        _node("Flatten", ["pooled"], ["flat"], "flatten"),
        _node("MatMul", ["flat", "weight"], ["projected"], "project"),
        _node("Tanh", ["projected"], ["embedding"], "squash"),
    ]
    graph = (
        b"".join(_bytes(1, node) for node in nodes)
        + _bytes(2, "tiny_arcface")
        + _bytes(5, _tensor("weight", weight))
        + _bytes(11, _value_info("input.1", ["None", 3, side, side]))
        + _bytes(12, _value_info("embedding", ["None", WIDTH]))
    )
    model = _int(1, 7) + _bytes(2, "tests") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, 13))
    with open(path, "wb") as handle:
        handle.write(model)
    return str(path)


def faces() -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(generated, real, speaker) per sample: 112×112 colour-block faces, three frames each; two speakers of
    two samples; the generated frames are the real ones darkened, noisier and with their red and blue swapped
    in part (so the channel order matters)."""
    rng = np.random.default_rng(1)
    looks = {speaker: rng.uniform(30, 220, size=(7, 7, 3)) for speaker in ("a", "b")}
    samples = []
    for speaker in ("a", "a", "b", "b"):
        real = np.kron(looks[speaker] + rng.normal(0, 10, size=(3, 7, 7, 3)), np.ones((1, 16, 16, 1)))
        generated = 0.8 * real + rng.normal(0, 15, size=real.shape)
        generated[..., 10:60, :, :] = generated[..., 10:60, :, ::-1]
        to_uint8 = lambda v: np.clip(v, 0, 255).astype(np.uint8)  # noqa: E731
        samples.append((to_uint8(generated), to_uint8(real), speaker))
    return samples


def test_csim_agrees_with_insightface(tmp_path):
    similarity = ArcFaceSimilarity(load_arcface(tiny_arcface(tmp_path / "w600k_r50.onnx")))
    for generated, real, speaker in faces():
        similarity.update(generated, real, speaker)
    values, missing = similarity.compute()
    assert not missing and values["csim"] == pytest.approx(INSIGHTFACE_CSIM, abs=1e-6)
    assert values["csim"] < 0.999, "the generated faces must differ for the comparison to mean anything"

    # The channel order is part of the answer: BGR frames give another number.
    swapped = ArcFaceSimilarity(lambda frames: similarity.embedder(np.ascontiguousarray(frames[..., ::-1])))
    for generated, real, speaker in faces():
        swapped.update(generated, real, speaker)
    assert abs(swapped.compute()[0]["csim"] - INSIGHTFACE_CSIM) > 1e-3


def test_the_suite_reports_csim_with_weights_and_says_why_not_without(tmp_path):
    weights = tiny_arcface(tmp_path / "w600k_r50.onnx")
    with_weights = MetricSuite(MetricSettings(landmarks=False, frames_per_clip=1, arcface_weights=weights))
    without = MetricSuite(MetricSettings(landmarks=False, frames_per_clip=1))
    for suite in (with_weights, without):
        for generated, real, speaker in faces():
            suite.update(GeneratedSample(generated, real, speaker))
    values, missing = with_weights.compute()
    assert "csim" not in missing and -1 <= values["csim"] <= 1 and math.isfinite(values["csim"])
    assert "ArcFace" in with_weights.notes()["csim"]
    values, missing = without.compute()
    assert (
        "csim" not in values and "arcface_weights" in missing["csim"] and "w600k_r50.onnx" in missing["csim"]
    )


def test_a_damaged_or_wrong_arcface_file_is_named_with_the_fix(tmp_path):
    damaged = tmp_path / "w600k_r50.onnx"
    damaged.write_bytes(b"half a download")
    with pytest.raises(WeightsError, match=r"w600k_r50\.onnx: not a readable ONNX model") as error:
        load_arcface(damaged)
    assert "\n" not in str(error.value) and "arcface_weights=PATH" in str(error.value)
    with pytest.raises(WeightsError, match="not found"):
        load_arcface(tmp_path / "absent.onnx")
    with pytest.raises(WeightsError, match="not a recognition model"):
        load_arcface(tiny_arcface(tmp_path / "other.onnx", side=64))
    suite = MetricSuite(MetricSettings(landmarks=False, arcface_weights=str(damaged)))
    assert str(damaged) in suite.compute()[1]["csim"]
