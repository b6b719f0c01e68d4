"""benchmarks/official.py without the official checkouts (CI has none): our side of the step, the errors."""

import math

import pytest
import torch

from benchmarks import official


@pytest.mark.parametrize("name", ["sf2f-64", "wav2pix-128"])
def test_our_training_step_times(name):
    measured = official.time_ours(name, batch_size=2, device=torch.device("cpu"), repeats=1, warmup=0)
    assert math.isfinite(measured.seconds) and measured.seconds > 0


def test_step_updates_both_sides():
    system = official.SYSTEMS["sf2f-64"]
    nets = official._build(system, "ours", None, torch.device("cpu"))
    before = [p.detach().clone() for p in (next(nets.generator.parameters()), next(nets.critic.parameters()))]
    batch = system.make_batch(2, torch.device("cpu"))
    official.make_step(nets, batch, system.loss, system.lrs, system.betas)()
    after = (next(nets.generator.parameters()), next(nets.critic.parameters()))
    assert all(not torch.equal(b, a) for b, a in zip(before, after))


def test_wrong_repo_path_is_named(tmp_path):
    missing = tmp_path / "no-such-checkout"
    with pytest.raises(official.RepoError, match=str(missing)):
        official.check_checkout(missing, official.SYSTEMS["sf2f-64"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(official.RepoError, match="SF2F_PyTorch"):
        official.check_checkout(tmp_path / "empty", official.SYSTEMS["sf2f-64"])


def test_cli_reports_the_wrong_path(tmp_path, capsys):
    missing = tmp_path / "wav2pix-checkout"
    with pytest.raises(SystemExit):
        official.main(["--wav2pix-repo", str(missing)])
    assert str(missing) in capsys.readouterr().err
