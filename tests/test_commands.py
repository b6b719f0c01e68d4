"""Every command's error boundary (`datamodules/errors.py: command_errors`): a problem the user
can fix is one line naming it and the fix, with the traceback only on request; a bug keeps its traceback
and says how to report it; an unknown experiment gets the same answer, with the known names, everywhere."""

import pytest

from datamodules.errors import REPORT_HINT, DatasetError, command_errors
from experiments.configs import experiment_names, stage_chain
from tests.command_runs import run_module, the_error_line


def test_a_missing_dataset_root_is_one_line_and_the_traceback_comes_with_verbose(tmp_path):
    missing = tmp_path / "lrw copy (2)"
    plain = run_module("experiments.prepare", "lrw", "--root", str(missing))
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    (line,) = plain.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(missing) in line
    verbose = run_module("experiments.prepare", "lrw", "--root", str(missing), VERBOSE="1")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr and line in verbose.stderr


def test_project_errors_exit_with_their_message_and_bugs_keep_their_traceback(capsys):
    with pytest.raises(SystemExit, match="^error: clip.mp4: broken. Remove it.$"):
        with command_errors(debug=False):
            raise DatasetError("clip.mp4: broken. Remove it.")
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        with command_errors(debug=False):
            _ = 1 / 0
    err = capsys.readouterr().err
    assert (
        exit_info.value.code == 1 and "ZeroDivisionError" in err and "Traceback" in err and REPORT_HINT in err
    )


@pytest.mark.parametrize(
    "command",
    [
        ["experiments.train", "no_such_exp"],
        ["experiments.evaluate", "no_such_exp", "--ckpt", "last"],
        ["experiments.infer", "no_such_exp", "--audio", "a.wav", "--out", "out.mp4"],
        ["experiments.prepare", "lrw", "--experiment", "no_such_exp"],
    ],
    ids=lambda command: command[0],
)
def test_every_command_answers_an_unknown_experiment_with_the_known_ones(command, capsys):
    import importlib

    main = importlib.import_module(command[0]).main
    with pytest.raises(SystemExit, match=r"^error: unknown experiment 'no_such_exp'\. Known: a2v, .*sf2f"):
        main(command[1:])


@pytest.mark.parametrize(
    "override",
    [
        "--trainer.default_root_dir=/tmp/elsewhere",
        "--trainer.logger.init_args.save_dir=/tmp/logs",
        "--trainer.callbacks.init_args.dirpath",
        "--trainer.default_root_dir",
    ],
)
def test_overrides_that_move_the_outputs_are_refused_up_front_naming_the_switch(
    override, isolated_data_and_runs
):
    from experiments import train as train_entry

    runs = isolated_data_and_runs / "runs" / "sf2f"
    existing = set(runs.iterdir()) if runs.exists() else set()
    with pytest.raises(train_entry.ExperimentError, match="TF_RUNS_DIR=<folder>"):
        train_entry.train("sf2f", overrides=[override, "/tmp/x"])
    assert (
        set(runs.iterdir()) if runs.exists() else set()
    ) == existing  # refused before any run folder was made


@pytest.mark.parametrize("experiment", experiment_names("entry"))
def test_plan_lists_every_stage_with_its_stacked_configs_and_hand_overs(experiment):
    from experiments.plan import describe

    demo, real = describe(experiment), describe(experiment, data="/data/real")
    for stage in stage_chain(experiment):
        assert f". {stage} (" in demo
    assert "demo overlay" in demo and "demo overlay" not in real
    assert "hands on: " in demo


class RunsCode:
    """Pickled, it calls `print` when loaded: what loading a checkpoint must never do."""

    def __reduce__(self):
        return (print, ("this pickle runs code",))


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, str]:
    import torch

    folder = tmp_path_factory.mktemp("bad inputs")
    torch.save({"state_dict": {}, "note": RunsCode()}, folder / "runs code.ckpt")
    (folder / "garbage.ckpt").write_bytes(b"\x00garbage" * 100)
    names = {"missing": "no such dataset", "runs_code": "runs code.ckpt", "garbage": "garbage.ckpt"}
    return {key: str(folder / name) for key, name in names.items()} | {"out": str(folder / "out.ckpt")}


@pytest.mark.parametrize(
    "command, variable",
    [
        (["experiments.prepare", "hq_voxceleb", "--root", "{missing}"], "ROOT"),
        (["experiments.train", "sf2f", "--data", "{missing}"], "DATA"),
        (["experiments.evaluate", "sf2f", "--ckpt", "{runs_code}"], "CKPT"),
        (["experiments.export", "sf2f", "--ckpt", "{garbage}", "--out", "{out}"], "CKPT"),
        (
            ["experiments.infer", "sf2f", "--ckpt", "{runs_code}", "--audio", "a.wav", "--out", "{out}"],
            "CKPT",
        ),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else value,
)
def test_a_bad_input_ends_every_command_with_one_error_line_naming_its_variable(
    command, variable, bad_inputs
):
    module, *arguments = (part.format(**bad_inputs) for part in command)
    line = the_error_line(run_module(module, *arguments))
    named = {name for name in ("ROOT", "DATA", "CKPT", "AUDIO", "IMAGE") if f"{name}=" in line}
    assert named == {variable}, line
    if "{runs_code}" in command:  # in our words, not PyTorch's advice to load it anyway
        assert "loading it could run code" in line and "weights_only" not in line, line


def test_the_error_line_starts_after_an_open_progress_bar_and_quotes_no_escape_codes(capsys):
    from tqdm.auto import tqdm

    with pytest.raises(SystemExit) as exit_info:
        with command_errors(debug=False):
            progress = tqdm(total=3, desc="faces")  # open, as a bar whose loop failed inside a comprehension
            raise DatasetError("a.wav: cannot decode audio (\x1b[1mbold\x1b[0m,\n\tthen more).")
    assert exit_info.value.code == "error: a.wav: cannot decode audio (bold, then more)."
    bar = capsys.readouterr().err
    assert "faces" in bar and bar.endswith("\n")  # the bar's line is finished before the error is printed
    assert progress.disable  # closed
