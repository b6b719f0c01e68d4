"""W&B logs live only when its own switches ask for it and it can work; otherwise offline, saying why in one
line, quickly, and never asking for a key. `make wandb-sync` uploads a run's offline runs."""

import http.server
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from experiments import wandb_mode, wandb_sync
from experiments.configs import ExperimentError

URL = "https://api.wandb.example"


@pytest.fixture
def no_stored_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # no netrc entry


def settings(monkeypatch, mode="online", url=URL):
    monkeypatch.setattr(wandb_mode, "wandb_settings", lambda: (mode, url))


@pytest.mark.parametrize(("requested", "offline"), [("offline", True), ("dryrun", True), ("disabled", False)])
def test_wandbs_own_offline_and_disabled_modes_are_kept(requested, offline, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", requested)
    assert wandb_mode.logs_offline() is offline


def test_without_an_account_runs_stay_offline_and_nothing_asks_for_a_key(no_stored_key, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    settings(monkeypatch)  # W&B's default mode is online
    assert wandb_mode.logs_offline() and capsys.readouterr().out == ""  # the default: silent
    monkeypatch.setenv("WANDB_MODE", "online")  # asked for: one line saying why not
    assert wandb_mode.logs_offline()
    (line,) = capsys.readouterr().out.splitlines()
    assert "no W&B API key" in line and "wandb login" in line and "make wandb-sync" in line


def test_wandb_offline_in_the_settings_keeps_a_logged_in_user_offline(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    settings(monkeypatch, mode="offline")
    assert wandb_mode.logs_offline()


@contextmanager
def local_server(answers: bool):
    """A server on a free local port that answers HTTP (404 to everything) or accepts and stays silent."""
    if not answers:
        with socket.create_server(("127.0.0.1", 0)) as server:
            yield f"http://127.0.0.1:{server.getsockname()[1]}"
        return
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_logged_in_user_logs_live_when_the_server_answers(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    (tmp_path / "netrc").write_text("machine 127.0.0.1 login user password " + "k" * 40 + "\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # where `wandb login` stores the key
    with local_server(answers=True) as url:
        settings(monkeypatch, url=url)
        assert not wandb_mode.logs_offline()


@pytest.mark.parametrize("server", ["refused", "silent", "unknown name"])
def test_an_online_run_without_a_server_falls_back_offline_in_one_line_quickly(server, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    with local_server(answers=False) as silent:
        url = {"refused": "http://127.0.0.1:9", "silent": silent, "unknown name": "https://wandb.invalid"}
        settings(monkeypatch, url=url[server])
        started = time.monotonic()
        assert wandb_mode.logs_offline(reach_timeout_s=0.5)
    assert time.monotonic() - started < 2.0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("[wandb] W&B is switched on, but ") and "does not answer" in line


def test_the_training_logger_follows_the_decision(monkeypatch, capsys):
    from experiments import configs
    from experiments.cli import ProjectCLI

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb_mode, "stored_key", lambda *_: False)
    files = configs.stage_configs("wav2pix", demo=True, smoke=True)
    args = [a for f in files for a in ("--config", f)]
    cli = ProjectCLI(args=[*args, "--trainer.logger=lightning.pytorch.loggers.WandbLogger"], run=False)
    assert cli.trainer.logger._offline and "no W&B API key" in capsys.readouterr().out
    # a config that says offline stays offline without asking anything
    monkeypatch.setattr(wandb_mode, "logs_offline", lambda: pytest.fail("asked"))
    cli = ProjectCLI(
        args=[
            *args,
            "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
            "--trainer.logger.offline=true",
        ],
        run=False,
    )
    assert cli.trainer.logger._offline


def test_wandb_sync_uploads_every_offline_run_of_a_run_folder(tmp_path, capsys):
    run = tmp_path / "runs" / "sf2f" / "20261207-120000"
    launches = [
        run / "sf2f" / "wandb" / "offline-run-20261207_120001-ab12cd34",
        run / "sf2f" / "wandb" / "offline-run-20261207_130001-ab12cd34",  # the resumed launch, same run id
        run / "sf2f_fuser" / "wandb" / "offline-run-20261207_140001-ef56ab78",
        run / "sf2f_fuser" / "eval" / "wandb" / "offline-run-20261207_150001-0a1b2c3d",
    ]
    for folder in launches:
        folder.mkdir(parents=True)
    (run / "sf2f" / "wandb" / "offline-run-stray.txt").write_text("")  # not a run folder
    command = wandb_sync.sync_command(run)
    assert command[1:4] == ["-m", "wandb", "sync"] and command[4:] == sorted(map(str, launches))
    wandb_sync.main(["--run", str(run), "--dry-run"])
    assert "wandb sync" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExperimentError, match="holds no offline W&B run"):
        wandb_sync.sync_command(tmp_path / "empty")
    with pytest.raises(ExperimentError, match="no such run folder"):
        wandb_sync.run_folder(str(tmp_path / "missing"), None)


def test_a_training_launch_without_wandb_mode_or_key_logs_offline(tmp_path):
    """The whole path, in a fresh process: nothing sets WANDB_MODE and no key is stored, so the run must log
    offline (W&B started early would keep its own "online" and ask for a key)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), TF_RUNS_DIR=str(tmp_path / "runs"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "experiments.train", "wav2pix", "--smoke", "--trainer.max_steps=2"]
    command.append("--trainer.logger=lightning.pytorch.loggers.WandbLogger")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((tmp_path / "runs").glob("wav2pix/*/wav2pix/wandb/offline-run-*"))
