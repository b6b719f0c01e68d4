"""`make app` without a browser: which system a checkpoint belongs to, and the one-line refusals
(tests/browser/test_app.py drives the page itself)."""

import pytest

from experiments.app import experiment_of, main
from experiments.configs import ExperimentError


def test_the_system_comes_from_exp_or_from_the_runs_folder(tmp_path):
    assert experiment_of(str(tmp_path / "runs" / "tcsan" / "20260101-000000"), None) == "tcsan"
    assert experiment_of(str(tmp_path / "anything.ckpt"), "sf2f") == "sf2f"
    with pytest.raises(ExperimentError, match="cannot tell which system.*Pass EXP="):
        experiment_of(str(tmp_path / "elsewhere" / "model.ckpt"), None)


def test_last_without_a_system_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--ckpt", "last"])
    assert str(exit_.value).startswith("error: CKPT=last needs the system: pass EXP=")
