"""The Kinetics-400 I3D video network that FVD embeds clips with, read from StyleGAN-V's TorchScript file.

`i3d_torchscript.pt` is StyleGAN-V's port of the tf.hub I3D that the original TensorFlow FVD uses
(universome/stylegan-v, `src/metrics/frechet_video_distance.py`; its companion repository
universome/fvd-comparison shows the port's outputs equal tf.hub's). It is a TorchScript archive: loading it
builds the scripted network and runs no pickled Python. It is called as
`detector(videos, rescale=..., resize=..., return_features=...)` on `(N, 3, T, H, W)` videos and returns
`(N, 400)` features (the logits before the softmax) when `return_features` is true.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import WeightsError

I3D_FILE = "i3d_torchscript.pt"
CALL_KEYWORDS = ("rescale", "resize", "return_features")
HOW_TO_GET = (
    f"download StyleGAN-V's {I3D_FILE} (the link in universome/stylegan-v "
    "src/metrics/frechet_video_distance.py; docs/weights.md) and pass --weights i3d_weights=PATH or put it "
    "in the weights folder"
)


def load_i3d(path: str | Path) -> torch.jit.ScriptModule:
    """The scripted I3D at `path` in eval mode on the CPU.

    Raises:
        WeightsError: naming `path`, when it is missing, is no TorchScript archive, or its network does not
            take I3D's keywords (`CALL_KEYWORDS`).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: I3D TorchScript file not found; {HOW_TO_GET}.")
    try:
        network = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:  # noqa: BLE001 - any failure to read the archive means it is not the file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WeightsError(f"{path}: not a readable TorchScript archive ({reason}); {HOW_TO_GET}.") from None
    arguments = {argument.name for argument in network.forward.schema.arguments}
    absent = [keyword for keyword in CALL_KEYWORDS if keyword not in arguments]
    if absent:
        raise WeightsError(
            f"{path}: its network takes no {absent} keyword, so it is not StyleGAN-V's I3D; {HOW_TO_GET}."
        )
    return network.eval()
