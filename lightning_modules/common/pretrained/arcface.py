"""ArcFace face-recognition embeddings from insightface's ONNX model, run with onnxruntime (CSIM).

The model is insightface's `w600k_r50.onnx` (ResNet-50 trained on WebFace600K, the recognition model of the
`buffalo_l` pack). Faces are fed as insightface's `model_zoo/arcface_onnx.py` feeds them (insightface commit
7fadd420c2351d0ffa8cac403421c1a3ed733365): `(N, 3, 112, 112)` float32, RGB channel order (insightface reads
BGR images and swaps them), each pixel mapped by (x − 127.5) / 127.5. insightface crops the face by a 5-point
similarity alignment to 112×112; the frames scored here are already aligned face crops (as for the other
identity metrics), so the whole frame is resized to 112×112 (bilinear, rounded to uint8 like an aligned crop).

Models converted from MXNet carry that normalisation inside the graph (insightface then feeds raw pixels);
only models without it, as `w600k_r50.onnx`, are meant here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import WeightsError

ARCFACE_FILE = "w600k_r50.onnx"
INPUT_SIDE = 112
PIXEL_CENTRE = PIXEL_SCALE = 127.5
HOW_TO_GET = (
    f"take {ARCFACE_FILE} from insightface's buffalo_l model pack (docs/weights.md) and pass "
    "--weights arcface_weights=PATH or put it in the weights folder"
)


def arcface_input(faces: np.ndarray) -> np.ndarray:
    """`(N, H, W, 3)` uint8 RGB face crops → `(N, 3, 112, 112)` float32 in [-1, 1], ArcFace's input."""
    pixels = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float()
    if tuple(pixels.shape[-2:]) != (INPUT_SIDE, INPUT_SIDE):
        resized = F.interpolate(pixels, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False)
        pixels = resized.round().clamp(0, 255)
    return ((pixels - PIXEL_CENTRE) / PIXEL_SCALE).numpy()


class ArcFaceEmbedder:
    """`(N, H, W, 3)` uint8 RGB faces → `(N, D)` float32 ArcFace embeddings (not normalised; D = 512)."""

    def __init__(self, session, batch_size: int):
        self.session, self.batch_size = session, batch_size
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        blob = arcface_input(faces)
        batches = [
            self.session.run([self.output_name], {self.input_name: blob[start : start + self.batch_size]})[0]
            for start in range(0, len(blob), self.batch_size)
        ]
        return np.concatenate(batches).astype(np.float32)


def _check_layout(session, path: Path) -> int:
    """The batch size the model takes (its fixed one, else 32); `WeightsError` unless it maps one
    `(N, 3, 112, 112)` input to one `(N, D)` output."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape if len(inputs) == 1 else None
    if (
        shape is None
        or len(shape) != 4
        or list(shape[1:]) != [3, INPUT_SIDE, INPUT_SIDE]
        or len(outputs) != 1
        or len(outputs[0].shape) != 2
    ):
        found = [(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs]
        raise WeightsError(
            f"{path}: takes {found[0]} and gives {found[1]}, not ArcFace's one (N, 3, 112, 112) input and "
            f"one (N, D) output, so it is not a recognition model; {HOW_TO_GET}."
        )
    return shape[0] if isinstance(shape[0], int) else 32


def load_arcface(path: str | Path) -> ArcFaceEmbedder:
    """The ArcFace ONNX model at `path` on onnxruntime's CPU provider.

    Raises:
        WeightsError: naming `path`, when it is missing, is not a readable ONNX model or its layout is not
            ArcFace's.
    """
    import onnxruntime

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: ArcFace ONNX file not found; {HOW_TO_GET}.")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: the released model's initializer warnings are noise here
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - any failure to read the graph means it is not the file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WeightsError(f"{path}: not a readable ONNX model ({reason}); {HOW_TO_GET}.") from None
    return ArcFaceEmbedder(session, _check_layout(session, path))
