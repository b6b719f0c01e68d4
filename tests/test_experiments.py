"""Every experiment config parses and instantiates; each trains end to end through the real entry point."""

import json
from pathlib import Path

import pytest
import yaml

from experiments import configs
from experiments import train as train_entry
from experiments.cli import ProjectCLI

EXPERIMENTS = configs.experiment_names()


# every experiment alone, and each later stage of a variant's chain, which stacks the variant's change
STAGES = [(name, name) for name in EXPERIMENTS] + [
    (name, stage)
    for name in EXPERIMENTS
    if configs.variant_configs(name)
    for stage in configs.continued_stages(name)[1:]
]


@pytest.mark.parametrize(("experiment", "stage"), STAGES)
def test_config_instantiates(experiment, stage):
    files = configs.stage_configs(experiment, demo=True, smoke=True, stage=stage)
    if configs.config_value(stage, "job") == "prepare":  # data preparation only: no model
        assert configs.make_datamodule(*configs.stacked_section(files, "data")) is not None
        return
    args = [a for c in files for a in ("--config", c)]
    cli = ProjectCLI(args=args, run=False)
    assert cli.model is not None and cli.datamodule is not None
    if "num_identities" in cli.model.hparams:  # the link really sized the classifier from the data
        assert cli.model.hparams.num_identities == cli.datamodule.num_identities


def test_stage_chains():
    assert train_entry.stage_chain("sf2f") == ["sf2f", "sf2f_fuser"]
    # a variant runs its base's chain, its change stacked on every stage (tests/test_resolved_configs.py)
    assert train_entry.stage_chain("sf2f_multires") == ["sf2f_multires", "sf2f_fuser"]
    assert train_entry.stage_chain("e2e_nr_grid") == ["e2e_nr_grid", "e2e_nr_adv"]


def test_unknown_experiment_is_named():
    with pytest.raises(configs.ExperimentError, match="unknown experiment .nope.. Known: a2v"):
        configs.stage_chain("nope")
    with pytest.raises(configs.ExperimentError, match="shared config section"):
        configs.stage_chain("datasets/tcsan_grid")


def test_entry_experiments_ablations_and_stages_are_told_apart():
    assert configs.experiment_names("entry") == [
        "a2v",
        "e2e_nr",
        "e2e_nr_grid",
        "sf2f",
        "tcsan",
        "tcsan_tcd",
        "wav2pix",
    ]
    assert "tcsan_gru" in configs.experiment_names("ablation") and "sf2f_fuser" in configs.experiment_names(
        "stage"
    )
    used = {
        base
        for name in configs.experiment_names("entry") + configs.experiment_names("ablation")
        for stage in configs.stage_chain(name)
        for base in configs.lineage(stage)
    }
    assert set(configs.experiment_names("stage")) <= used  # an internal stage is part of some chain


def test_every_meta_key_is_inherited_through_extends_and_null_clears_it():
    # e2e_nr names e2e_nr_adv as its next stage; e2e_nr_adv extends e2e_nr and clears it with null.
    assert configs.config_value("e2e_nr", "next_stage") == "e2e_nr_adv"
    assert configs.config_value("e2e_nr_adv", "next_stage") is None
    assert configs.config_value("a2v", "pretrained") == {"vae_from": "a2v_vae"}  # from a2v_embed2lat
    assert configs.pretrained_inputs("tcsan_gru") == {}  # tcsan's AU classifier, cleared with {}
    # An ablation stacks on its base, demo overlay included (wav2pix_paper_only did not before).
    files = [
        str(Path(f).relative_to(configs.EXPERIMENTS))
        for f in configs.stage_configs("wav2pix_paper_only", True, False)
    ]
    assert files == ["wav2pix.yaml", "demo/wav2pix.yaml", "ablations/wav2pix_paper_only.yaml"]


def test_sf2f_trains_both_stages_and_resumes(smoke_run):
    run_dir = smoke_run("sf2f")
    for stage in ("sf2f", "sf2f_fuser"):
        stage_dir = run_dir / stage
        completed = json.loads((stage_dir / "COMPLETED.json").read_text())
        assert Path(completed["best"]).exists() and completed["global_step"] == 8
        assert {"test/l1", "test/cosine", "test/r@1", "test/r@1_chance"} <= set(completed["test"])
        assert (stage_dir / "checkpoints" / "last.ckpt").exists()
        assert (stage_dir / "config.yaml").exists()
        assert list((stage_dir / "samples").glob("val_samples-*.png"))
    assert (run_dir / "sf2f" / "metrics.csv").exists() and (run_dir / "sf2f" / "run_info.json").exists()
    # A rerun with --resume last finds both stages completed and trains nothing more.
    (run_dir / "sf2f_fuser" / "COMPLETED.json").unlink()
    resumed = train_entry.train("sf2f", smoke=True, resume=str(run_dir), overrides=["--trainer.max_steps=10"])
    assert resumed == run_dir
    assert json.loads((run_dir / "sf2f_fuser" / "COMPLETED.json").read_text())["global_step"] == 10


def test_the_sf2f_demo_run_shows_no_lightning_warning(smoke_run):
    """A newcomer takes Lightning's warnings for faults: a logging interval longer than the demo's epoch,
    frozen stage-1 networks in eval mode, no seed given."""
    from lightning.fabric.utilities.warnings import PossibleUserWarning

    smoke_run("sf2f")
    from_lightning = [
        f"{given.filename}:{given.lineno}: {given.message}"
        for given in smoke_run.warnings["sf2f"]
        if "lightning" in Path(given.filename).parts or issubclass(given.category, PossibleUserWarning)
    ]
    assert from_lightning == []


def test_sf2f_evaluates_and_draws_faces_from_any_speech(smoke_run, tmp_path):
    """`make eval EXP=sf2f` (paper table + shared metrics) and `make infer` to one PNG, then a grid."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    from experiments.evaluate import SharedOptions, evaluate
    from experiments.infer import infer

    run_dir = smoke_run("sf2f")
    report = evaluate(
        "sf2f", [str(run_dir)], data=None, out=str(tmp_path / "eval"), options={}, use_wandb=False
    )
    rows = {row.metric: row for row in report.rows}
    # smoke embedder is a proxy
    assert rows["cosine"].paper is None and "not comparable" in rows["cosine"].note
    assert "mean of 10 runs" in rows["cosine"].setting and "± " in rows["cosine"].note  # the paper's protocol
    assert "not computed" in rows["VFS"].note and rows["VFS"].paper == 19.49  # the fuser row of Table 3
    assert 0 <= rows["r@1 (%)"].ours <= 100 and rows["r@1 chance (%)"].ours > 0 and "r@1 control (%)" in rows
    assert "other pictures" in rows["psnr"].note  # unpaired faces: said, not silently dropped
    assert "identity_cosine" in rows and "cpbd" in rows and "inception_weights" in rows["fid"].note
    # with a VGGFace2 classifier (a random stand-in of 7 identities here) the VGGFace Score is computed
    from lightning_modules.common.pretrained.vggface2 import caffe_resnet50
    from tests.lightning_modules.test_vggface2 import write_weights

    write_weights(caffe_resnet50(num_classes=7), tmp_path / "resnet50_ft_weight.pkl")
    options = {"vfs_weights": str(tmp_path / "resnet50_ft_weight.pkl")}
    report = evaluate(
        "sf2f", [str(run_dir)], None, str(tmp_path / "vfs"), options, False, SharedOptions(enabled=False)
    )
    vfs = next(row for row in report.rows if row.metric == "VFS")
    assert 1.0 <= vfs.ours <= 7.0 and "5 splits" in vfs.note  # a score lies between 1 and the class count

    rng = np.random.default_rng(0)
    speech = []
    for index, (seconds, rate) in enumerate(((2.0, 16000), (0.7, 44100), (3.5, 8000))):
        path = tmp_path / f"speech{index}.wav"
        # stereo, any rate
        sf.write(path, rng.normal(0, 0.1, (int(seconds * rate), 2)).astype(np.float32), rate)
        speech.append(str(path))
    single = infer("sf2f", str(run_dir), speech[0], None, str(tmp_path / "face.mp4"))
    assert single.suffix == ".png" and Image.open(single).size == (64, 64)
    grid = infer("sf2f", str(run_dir), speech, None, str(tmp_path / "grid.png"))
    assert Image.open(grid).size == (3 * 64 + 4 * 2, 64 + 2 * 2)


def test_ctrl_c_saves_last_checkpoint_and_resume_continues(isolated_data_and_runs, tmp_path):
    """Interrupt a real training process with SIGINT, then resume it from last.ckpt with CKPT=last."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    env = {**os.environ, "TF_RUNS_DIR": str(tmp_path / "runs")}
    command = [
        sys.executable,
        "-m",
        "experiments.train",
        "sf2f",
        "--smoke",
        "--trainer.max_steps=400",
        "--checkpoint_every_n_steps=2",
        "--trainer.val_check_interval=null",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = None
    deadline = time.time() + 300  # as generous as the waits below: under load the first steps take minutes
    while time.time() < deadline and last is None:
        found = list((tmp_path / "runs").glob("sf2f/*/sf2f/checkpoints/last.ckpt"))
        last = found[0] if found else None
        time.sleep(0.5)
    assert last is not None, "no last.ckpt appeared"
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=300)  # generous: CI machines may be shared and slow
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"training did not stop within 300 s of SIGINT; its stderr ends with:\n{stderr[-3000:]}")
    # Lightning exits 1 after a graceful stop
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    assert not (last.parents[1] / "COMPLETED.json").exists()
    interrupted_step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < interrupted_step < 400
    resumed = subprocess.run(
        [*command[:5], "--resume", "last", "--trainer.max_steps=" + str(interrupted_step + 4), *command[6:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {last}" in resumed.stdout
    stage_one = json.loads((last.parents[1] / "COMPLETED.json").read_text())
    assert stage_one["global_step"] == interrupted_step + 4


@pytest.mark.slow
def test_demo_training_beats_chance_on_held_out_speakers(isolated_data_and_runs):
    """The default demo run (`make train EXP=sf2f`) learns voice → face: test-speaker R@1 well above
    chance."""
    run_dir = train_entry.train("sf2f", overrides=["--trainer.logger=false"])
    for stage in ("sf2f", "sf2f_fuser"):
        test = json.loads((run_dir / stage / "COMPLETED.json").read_text())["test"]
        assert test["test/r@1"] >= 2 * test["test/r@1_chance"], (stage, test)
        assert test["test/r@5"] > test["test/r@5_chance"], (stage, test)


def test_wav2pix_trains_then_evaluates_with_the_papers_protocol(smoke_run, tmp_path):
    """One model per speech length (the paper's sweep), then one evaluation table for both; `make compare`
    of the two runs; `make infer` draws a face from short speech."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    from experiments.evaluate import evaluate

    short_run = train_entry.train("wav2pix", smoke=True, overrides=["--data.init_args.audio_samples=4800"])
    run_dir = smoke_run("wav2pix")
    completed = json.loads((run_dir / "wav2pix" / "COMPLETED.json").read_text())
    assert {"test/l1", "test/speech_identity_accuracy"} <= set(completed["test"])
    report = evaluate(
        "wav2pix",
        [str(short_run), str(run_dir)],
        data=None,
        out=str(tmp_path / "eval"),
        options={"probe": "cnn"},
        use_wandb=False,
    )
    rows = {(row.metric, row.setting): row for row in report.rows}
    assert rows[("landmark detection rate (%)", "test speech, 300 ms")].paper == 81.16
    assert rows[("identity accuracy (%)", "speech from test partition")].paper == 50.08
    assert rows[("landmark detection rate (%)", "test speech, 1000 ms")].paper == 90.25
    assert all(0.0 <= row.ours <= 100.0 for row in report.rows if not row.setting.startswith("shared"))
    # the rule sees real faces
    assert rows[("sanity: detection rate on real test faces (%)", "real faces")].ours >= 75
    table = (tmp_path / "eval" / "results.md").read_text()
    assert "paper (real Youtubers, 10 ids)" in table and "ours (synthetic youtubers (tiny size))" in table
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["system"] == "Wav2Pix"
    assert rows[("face_detection_rate", f"shared harness, test split, {run_dir.name}/wav2pix")].ours >= 0
    assert "lpips_backbone" in rows[("lpips", f"shared harness, test split, {run_dir.name}/wav2pix")].note

    from experiments.compare import compare

    report_html, table, curves = compare(
        [str(short_run), str(run_dir / "wav2pix")], out=str(tmp_path / "compare")
    )
    assert curves.stat().st_size > 0 and list((tmp_path / "compare").glob("sample-*.png"))
    from experiments.infer import infer

    speech = tmp_path / "speech.wav"
    # shorter than 1 s
    sf.write(speech, np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 16000)
    face = infer("wav2pix", str(run_dir), str(speech), None, str(tmp_path / "face.png"))
    assert np.asarray(Image.open(face)).shape == (64, 64, 3)
    lines = table.read_text().splitlines()
    assert len(lines) == 4 and "test/l1" in lines[0]  # header, rule, one row per run
    assert "<img src='curves.png'>" in report_html.read_text()


def test_e2e_nr_trains_both_stages_then_sweeps_snr_and_animates_a_photo(smoke_run, tmp_path):
    """Reconstruction then adversarial stage; the paper's noise × SNR evaluation; `make infer` to an mp4."""
    import av
    import numpy as np
    import soundfile as sf
    from PIL import Image
    from skimage.data import astronaut

    from experiments.evaluate import evaluate
    from experiments.infer import infer

    run_dir = smoke_run("e2e_nr")
    for stage in ("e2e_nr", "e2e_nr_adv"):
        completed = json.loads((run_dir / stage / "COMPLETED.json").read_text())
        assert {"test/masked_l1", "test/l1"} <= set(completed["test"])
    assert json.loads((run_dir / "e2e_nr_adv" / "COMPLETED.json").read_text())["global_step"] == 8

    report = evaluate(
        "e2e_nr",
        [str(run_dir / "e2e_nr_adv")],
        data=None,
        out=str(tmp_path / "eval"),
        options={"snrs_db": [-5, 20], "noise_types": ["babble", "factory"], "max_clips": 2},
    )
    settings = {row.setting for row in report.rows}
    assert "Proposed-NR, clean speech" in settings and "Proposed-NR, -5 dB (mean of 2 noises)" in settings
    assert set(report.sweep.curves) == {"Proposed-NR · mean", "Proposed-NR · babble", "Proposed-NR · factory"}
    assert (tmp_path / "eval" / "sweep.png").stat().st_size > 0
    assert list((tmp_path / "eval" / "wandb").glob("offline-run-*"))  # table and plot logged for `wandb sync`
    failure = [r for r in report.rows if r.metric.startswith("landmark failure")]
    assert failure and all(0 <= r.ours <= 100 for r in failure)  # reported, never dropped

    speech = tmp_path / "speech.wav"
    sf.write(speech, np.random.default_rng(0).normal(0, 0.1, 19680).astype(np.float32), 16000)  # 1.23 s
    face = tmp_path / "face.png"
    Image.fromarray(astronaut()).convert("RGBA").save(face)
    out = infer(
        "e2e_nr",
        str(run_dir / "e2e_nr_adv"),
        str(speech),
        str(face),
        str(tmp_path / "out.mp4"),
        chunk_frames=8,
    )
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(video=0)) == 31  # ceil(9840 samples at 8 kHz / 320)


def test_tcsan_pretrains_its_supervisors_then_trains_and_reports_the_paper_table(smoke_run, tmp_path):
    """`make train EXP=tcsan`: AU classifier and Audio2AU first, loaded by the full model; then `make eval`
    and `make infer` on a photo."""
    import av
    import numpy as np
    import soundfile as sf
    import torch
    from PIL import Image
    from skimage.data import astronaut

    from experiments.evaluate import evaluate
    from experiments.infer import infer

    assert train_entry.stage_chain("tcsan") == ["tcsan_au_classifier", "tcsan_audio2au", "tcsan"]
    # ablations without Audio2AU or L_au need neither
    assert train_entry.stage_chain("tcsan_tcn") == ["tcsan_tcn"]
    run_dir = smoke_run("tcsan")
    bests = {
        stage: json.loads((run_dir / stage / "COMPLETED.json").read_text())
        for stage in train_entry.stage_chain("tcsan")
    }
    assert {"test/f1_mean", "test/accuracy_mean"} <= set(bests["tcsan_au_classifier"]["test"])
    assert {"test/l1", "test/psnr", "test/au_classifier_f1"} <= set(bests["tcsan"]["test"])

    config = yaml.safe_load((run_dir / "tcsan" / "config.yaml").read_text())["model"]["init_args"]
    assert config["au_classifier_from"] == bests["tcsan_au_classifier"]["best"]
    assert config["audio2au_from"] == bests["tcsan_audio2au"]["best"]
    full = torch.load(bests["tcsan"]["best"], map_location="cpu", weights_only=True)["state_dict"]
    audio2au = torch.load(bests["tcsan_audio2au"]["best"], map_location="cpu", weights_only=True)[
        "state_dict"
    ]
    name = (
        "networks.0.lstm.weight_ih_l0"  # fine-tuned at lr 1e-6 for a few steps: still the pretrained weights
    )
    assert torch.allclose(full[f"generator.audio2au.{name}"], audio2au[f"audio2au.{name}"], atol=1e-4)
    assert not any(k.startswith("generator.audio2au.") and ".head." in k for k in full)  # fc3 dropped

    report = evaluate(
        "tcsan", [str(run_dir)], data=None, out=str(tmp_path / "eval"), options={}, use_wandb=False
    )
    rows = {row.metric: row for row in report.rows}
    assert rows["PSNR (dB)"].paper == 29.971 and rows["SSIM"].paper == 0.772  # the full model's GRID row
    assert rows["AU Avg F1"].paper == 0.751 and rows["AU Avg Acc (%)"].paper == 81.15
    assert "not comparable" in rows["AU Avg F1"].note
    assert "AU classifier on generated: Avg F1" in rows
    table = (tmp_path / "eval" / "results.md").read_text()
    assert (
        "| TCSAN+Audio2AU (paper) | GRID test, 6 unseen speakers | 29.971 | 0.772 | 0.751 | 81.150 |" in table
    )
    assert "| TCSAN+Audio2AU (ours) | synthetic grid" in table

    speech = tmp_path / "speech.wav"
    sf.write(speech, np.random.default_rng(0).normal(0, 0.1, 19680).astype(np.float32), 16000)  # 1.23 s
    face = tmp_path / "face.png"
    Image.fromarray(astronaut()).convert("LA").save(face)  # greyscale with alpha
    out = infer("tcsan", str(run_dir), str(speech), str(face), str(tmp_path / "talking.mp4"), chunk_frames=8)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 31 and frames[0].shape == (112, 112, 3)  # ceil(1.23 s × 25 fps)


def test_a2v_inverts_trains_vae_then_embed2lat_and_reports_baselines(smoke_run, tmp_path):
    """`make train EXP=a2v`: inversion (a data stage), the VAE, then Embed2Lat loading it; `make eval`
    reports the paper's MSE beside trivial baselines and writes sample videos; `make infer` animates a
    photo."""
    import av
    import numpy as np
    import soundfile as sf
    import torch
    from PIL import Image
    from skimage.data import astronaut

    from experiments.evaluate import evaluate
    from experiments.infer import infer

    assert train_entry.stage_chain("a2v") == ["a2v_invert", "a2v_vae", "a2v"]
    run_dir = smoke_run("a2v")
    completed = {
        s: json.loads((run_dir / s / "COMPLETED.json").read_text()) for s in ("a2v_invert", "a2v_vae", "a2v")
    }
    assert completed["a2v_invert"]["best"] is None and completed["a2v_invert"]["prepared"]["frames"] > 0
    assert {"test/recon_mse", "test/kl"} <= set(completed["a2v_vae"]["test"])
    assert {"test/mse", "test/mse_zero_baseline"} <= set(completed["a2v"]["test"])
    vae = torch.load(completed["a2v_vae"]["best"], map_location="cpu", weights_only=True)["state_dict"]
    full = torch.load(completed["a2v"]["best"], map_location="cpu", weights_only=True)["state_dict"]
    # frozen, as trained
    assert torch.equal(full["vae.vae.decoder.0.weight"], vae["model.vae.decoder.0.weight"])
    assert float(full["vae.code_std"]) == float(vae["model.code_std"]) != 1.0
    assert not any(k.startswith(("generator", "speech_encoder")) for k in full)  # rebuilt, never stored

    from experiments.evaluate import SharedOptions

    sweep = SharedOptions(max_items=2, noise_sweep=True, snrs_db=(0.0, 20.0), noise_types=["babble"])
    report = evaluate(
        "a2v",
        [str(run_dir)],
        data=None,
        out=str(tmp_path / "eval"),
        options={"videos": 1},
        use_wandb=False,
        shared=sweep,
    )
    rows = {(row.metric, row.setting): row for row in report.rows}
    assert rows[("Embed2Lat MSE", "val")].paper == 0.273 and rows[("Embed2Lat MSE", "train")].paper == 0.269
    assert ("MSE of predicting zero", "val") in rows and ("MSE of predicting train mean", "val") in rows
    (details,) = report.details.values()  # one checkpoint
    with av.open(details["videos"][0]) as container:
        assert len(container.streams.audio) == 1 and len(container.streams.video) == 1
    shared = details["shared"]["shared_metrics"]
    assert {"psnr", "ssim", "l1", "face_detection_rate", "identity_cosine"} <= set(shared)
    assert "cpbd" in shared or "64×64" in details["shared"]["not_computed"]["cpbd"]  # smoke frames are 32 px
    (curve,) = report.noise_sweep.curves.values()  # the noise sweep, as for E2E-NR, on an A2V model
    assert set(curve) == {0.0, 20.0} and "psnr" in curve[0.0]
    assert (tmp_path / "eval" / "noise_sweep.png").stat().st_size > 0

    speech = tmp_path / "speech.wav"
    sf.write(speech, np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    face = tmp_path / "face.png"
    Image.fromarray(astronaut()).resize((256, 256)).save(face)
    out = infer("a2v", str(run_dir), str(speech), str(face), str(tmp_path / "talking.mp4"))
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 25 and frames[0].shape == (32, 32, 3)  # 1 s at 25 fps, the generator's resolution


def test_stop_after_ends_the_chain_at_the_named_stage(isolated_data_and_runs):
    with pytest.raises(train_entry.ExperimentError, match="--stop-after nope: not a stage of sf2f"):
        train_entry.train("sf2f", smoke=True, stop_after="nope")
    run_dir = train_entry.train("sf2f", smoke=True, stop_after="sf2f")
    assert (run_dir / "sf2f" / "COMPLETED.json").exists() and not (run_dir / "sf2f_fuser").exists()


@pytest.mark.parametrize(("experiment", "rate"), [("e2e_nr", 8000), ("tcsan", 16000), ("a2v", 16000)])
def test_the_speech_rate_is_linked_from_the_data_and_a_wrong_one_is_refused(experiment, rate):
    files = configs.stage_configs(experiment, demo=True, smoke=True)
    args = [a for c in files for a in ("--config", c)]
    assert ProjectCLI(args=args, run=False).model.hparams.sample_rate == rate
    with pytest.raises(
        ValueError, match=f"reads {rate} Hz speech.*data.init_args.sample_rate to {rate}, got 22050"
    ):
        ProjectCLI(args=[*args, "--data.init_args.sample_rate=22050"], run=False)


@pytest.mark.parametrize(
    ("experiment", "data_setting", "model_value"),
    [("sf2f", "vad=false", ("vad", False)), ("wav2pix", "pre_emphasis=0.9", ("pre_emphasis", 0.9))],
)
def test_how_speech_was_prepared_is_linked_into_the_face_systems(experiment, data_setting, model_value):
    """Inference asks the model how to prepare a user's speech (`speech_rate`, voice activity, pre-emphasis),
    so the model must carry what its data did."""
    files = configs.stage_configs(experiment, demo=True, smoke=True)
    args = [a for c in files for a in ("--config", c)] + [f"--data.init_args.{data_setting}"]
    model = ProjectCLI(args=args, run=False).model
    name, value = model_value
    assert model.hparams[name] == value and model.speech_rate == 16000
