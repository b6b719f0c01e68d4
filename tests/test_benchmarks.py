"""The benchmarks measure what they claim: the plain loop performs exactly Lightning's update, the numbers
come out finite, and the fast-path switches change what they say."""

import math
from argparse import Namespace
from contextlib import nullcontext

import pytest
import torch

from benchmarks import inference, train_step
from benchmarks.systems import SYSTEMS, build, tile
from experiments.cli import default_precision
from lightning_modules.common.training.callbacks import FastPath


def test_tile_cycles_the_fixture_samples_to_the_asked_batch():
    batch = {"face": torch.arange(3.0)[:, None], "identity": torch.tensor([4, 5, 6]), "step": torch.tensor(1)}
    tiled = tile(batch, 7)
    assert tiled["face"][:, 0].tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert tiled["identity"].tolist() == [4, 5, 6, 4, 5, 6, 4] and tiled["step"].item() == 1


def _parameters(module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


@pytest.mark.parametrize("name", ["wav2pix", "a2v"])
def test_plain_loop_makes_the_same_update_as_lightning(name):
    """Same start, same batch, same random numbers: one plain step and one `Trainer.fit` step leave the
    same weights, so their time ratio is Lightning's overhead and nothing else."""
    module, batch, *_ = build(name, 2)
    start = {k: v.clone() for k, v in module.state_dict().items()}
    before = _parameters(module)
    torch.manual_seed(0)
    train_step.plain_step(module, batch, train_step.optimisers(module), nullcontext)
    plain = _parameters(module)
    assert (plain - before).abs().max() > 1e-7  # the step did update the weights
    module.load_state_dict(start)
    torch.manual_seed(0)
    _one_lightning_step(module, batch)
    torch.testing.assert_close(_parameters(module), plain, rtol=1e-5, atol=1e-6)


def _one_lightning_step(module, batch) -> None:
    from lightning import Trainer

    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    trainer.fit(module, train_dataloaders=train_step._SameBatch(batch, 1))
    module.trainer = None


def test_train_step_benchmark_reports_finite_rates_and_flops():
    args = train_step.parse_args(["--systems", "sf2f", "--batch", "2", "--repeats", "2", "--warmup", "1"])
    (row,) = train_step.run_system("sf2f", args)
    assert row["batch"] == 2 and row["precision"] == "32-true"
    assert row["GFLOP/sample"] > 0.01 and row["samples/s"] > 0 and row["Lightning samples/s"] > 0
    assert math.isfinite(row["Lightning/plain"]) and row["peak MiB"] > 100
    assert math.isnan(row["MFU"])  # no peak known for a CPU unless --peak-tflops is given


def test_bf16_losses_follow_fp32_and_the_weights_are_put_back():
    module, batch, *_ = build("sf2f", 2)
    before = _parameters(module)
    drift = train_step.bf16_loss_drift(module, batch, torch.device("cpu"), steps=2)
    assert 0 < drift < 0.1  # autocast really ran in bf16, and stayed close to fp32
    assert torch.equal(_parameters(module), before)


def test_inference_benchmark_times_real_synthesis():
    args = Namespace(
        seconds=0.4, compile=False, a2v_stylegan3_pkl=None, a2v_stylegan3_repo=None, a2v_wav2vec2=None
    )
    row = inference.real_time_factor("tcsan", args)
    assert row["frames"] == 10 and row["resolution"] == 112 and row["RTF"] > 0
    assert "needs" in inference.real_time_factor("a2v", args)["RTF"]


def test_every_system_states_its_batch_and_sample():
    for system in SYSTEMS.values():
        assert system.batch_size >= system.cpu_batch >= 1 and system.unit


def test_fast_path_switches():
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Sequential(torch.nn.Linear(2, 2)))
    FastPath(channels_last=True, compile=True).setup(None, module, "fit")
    assert module[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(child._compiled_call_impl is not None for child in module.children())
    # checkpoints unchanged
    assert set(module.state_dict()) == {
        "0.weight",
        "0.bias",
        "1.0.weight",
        "1.0.bias",
    }
    plain = torch.nn.Conv2d(3, 4, 3)
    FastPath().setup(None, plain, "fit")
    assert plain.weight.is_contiguous() and plain._compiled_call_impl is None
    assert default_precision() == "32-true"  # no GPU here: full precision


def test_gpu_check_parts_that_fail_or_hang_are_reported_and_the_rest_go_on():
    import sys

    from benchmarks.gpu_check import Part, run

    failed = run(Part("fails", [sys.executable, "-c", "import sys; sys.exit('no CUDA here')"], 60))
    hung = run(Part("hangs", [sys.executable, "-c", "import time; time.sleep(30)"], 1))
    assert (failed.status, hung.status) == ("failed", "timed out")
    assert "no CUDA here" in failed.output and "over its 1 s budget" in hung.output


def test_gpu_check_dry_run_runs_every_part_once_and_writes_its_report(tmp_path):
    """`make gpu-check ARGS=--dry-run`: each system's training step, the data headroom and inference, one
    step each on the CPU, so the script is known to work before GPU minutes are spent on it."""
    import json

    from benchmarks.gpu_check import gpu_check

    report = gpu_check(tmp_path, dry_run=True)
    parts = json.loads((tmp_path / "report.json").read_text())["parts"]
    assert {part["status"] for part in parts} == {"ok"}, [
        (p["name"], p["output"]) for p in parts if p["status"] != "ok"
    ]
    assert {row["system"] for part in parts for row in part["rows"]} == {
        "e2e_nr",
        "wav2pix",
        "sf2f",
        "tcsan",
        "a2v",
    }
    assert "data headroom" in report.read_text() and "inference" in report.read_text()
    headroom = next(part for part in parts if part["name"] == "data headroom")["output"]
    assert "headroom at 8 cores" in headroom and "| sf2f |" in headroom


def test_recipe_probe_scores_the_validation_clips_never_the_test_clips(monkeypatch, tmp_path):
    from benchmarks import recipe_probe

    monkeypatch.setenv("TF_RUNS_DIR", str(tmp_path))
    asked = []
    real_samples = recipe_probe.load_run_for_evaluation

    def spying_load(*args):
        model, datamodule = real_samples(*args)
        evaluation_samples = model.evaluation_samples

        def samples(datamodule, split, **kwargs):
            asked.append(split)
            return evaluation_samples(datamodule, split, **kwargs)

        model.evaluation_samples = samples
        return model, datamodule

    monkeypatch.setattr(recipe_probe, "load_run_for_evaluation", spying_load)
    values = recipe_probe.probe("e2e_nr_base", 2, [], max_items=2, smoke=True)
    assert asked == ["val"] and "speech_mouth_r" in values and values["minutes"] > 0
