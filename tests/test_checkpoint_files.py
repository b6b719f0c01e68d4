"""Checkpoints travel on their own: every checkpoint carries its experiment, stage and config, `make export`
writes a slim one that `weights_only=True` loads, and `make eval` / `make infer` take either from anywhere;
a file that is not a checkpoint is named in one clear error."""

import pickle
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from experiments.checkpoints import load_model, read_checkpoint
from experiments.export import export
from experiments.infer import infer
from lightning_modules.common.errors import CheckpointError
from lightning_modules.common.training.callbacks import STAGE_CONFIG_KEY
from tests.command_runs import run_module, the_error_line


@pytest.fixture(scope="module")
def sf2f_checkpoint(smoke_run):
    completed = (smoke_run("sf2f") / "sf2f_fuser" / "checkpoints").glob("*.ckpt")
    return sorted(completed)[0]


def test_a_checkpoint_copied_out_of_its_run_folder_still_generates(sf2f_checkpoint, tmp_path):
    copied = tmp_path / "shared by a colleague" / "model.ckpt"
    copied.parent.mkdir()
    shutil.copy(sf2f_checkpoint, copied)
    assert read_checkpoint(copied)[STAGE_CONFIG_KEY]["stage"] == "sf2f_fuser"
    speech = tmp_path / "speech.wav"
    sf.write(speech, np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32), 16000)
    assert infer("sf2f", str(copied), [str(speech)], None, str(tmp_path / "face.png")).exists()


def test_export_writes_a_slim_weights_only_checkpoint_that_loads_as_the_original(sf2f_checkpoint, tmp_path):
    out = export("sf2f", str(sf2f_checkpoint), tmp_path / "export" / "model.ckpt")
    slim = torch.load(out, map_location="cpu", weights_only=True)
    assert "optimizer_states" not in slim and "state_dict" in slim and STAGE_CONFIG_KEY in slim
    assert out.stat().st_size < sf2f_checkpoint.stat().st_size
    original, _, _ = load_model("sf2f", sf2f_checkpoint)
    exported, _, _ = load_model("sf2f", out)
    for (name, a), (_, b) in zip(original.state_dict().items(), exported.state_dict().items()):
        assert torch.equal(a, b), name


class RunsCode:
    def __reduce__(self):
        return (print, ("this pickle runs code",))


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00garbage" * 100, pickle.dumps(RunsCode()), "no weights"],
    ids=["zero bytes", "garbage", "pickle with code", "no weights"],
)
def test_what_is_not_a_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "model.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save({"epoch": 1}, path)
    with pytest.raises(CheckpointError, match=f"^{path}: "):
        load_model("sf2f", path)


def test_batch_inference_writes_every_good_row_and_names_the_bad_one(sf2f_checkpoint, tmp_path):
    import csv

    from experiments.infer import infer_batch

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("first.wav", "second voice.wav"):
        sf.write(inputs / name, np.random.default_rng(1).normal(0, 0.1, 24000).astype(np.float32), 16000)
    (inputs / "broken.wav").write_bytes(b"not audio")
    pairs = inputs / "pairs.csv"
    pairs.write_text("audio\nfirst.wav\nbroken.wav\nsecond voice.wav\n")
    out = infer_batch("sf2f", str(sf2f_checkpoint), str(pairs), str(tmp_path / "out"))
    index = list(csv.DictReader((out / "index.csv").open()))
    errors = list(csv.DictReader((out / "errors.csv").open()))
    assert [row["row"] for row in index] == ["1", "3"] and all(
        (out / row["output"]).stat().st_size > 0 for row in index
    )
    assert [row["row"] for row in errors] == ["2"] and "broken.wav" in errors[0]["error"]


def test_infer_names_an_unreadable_audio_as_its_audio_after_the_progress_bar(sf2f_checkpoint, tmp_path):
    audio = tmp_path / "zero_byte.wav"
    audio.write_bytes(b"")
    ran = run_module(
        "experiments.infer", "sf2f", "--ckpt", str(sf2f_checkpoint), "--audio", str(audio), "--out", "x.png"
    )
    line = the_error_line(ran)  # the "faces" progress bar was open when the audio failed
    assert line.startswith(f"error: {audio}: cannot decode audio") and "AUDIO=<" in line, line
    assert "dataset" not in line  # the user's own file, not one of a dataset


def test_a_checkpoint_from_before_a_link_takes_the_value_from_its_saved_data_config():
    from experiments.checkpoints import unsaved_links
    from lightning_modules.sf2f.module import SF2FModule
    from lightning_modules.wav2pix.module import Wav2PixModule

    config = {"data": {"init_args": {"vad": False, "pre_emphasis": 0.9, "image_size": 64}}}
    older = {"hyper_parameters": {"image_size": 64}}  # written before SF2F took `vad`
    assert unsaved_links(SF2FModule, older, config) == {"vad": False}
    assert unsaved_links(Wav2PixModule, older, config) == {"pre_emphasis": 0.9}
    newer = {"hyper_parameters": {"image_size": 64, "vad": True}}  # its own value stands
    assert unsaved_links(SF2FModule, newer, config) == {}
