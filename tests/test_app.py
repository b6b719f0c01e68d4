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


def test_the_command_serves_the_page_for_a_demo_checkpoint(smoke_run):
    """`python -m experiments.app --ckpt RUN` (what `make app CKPT=RUN` runs) serves the page on its port,
    to this machine only."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "experiments.app", f"--ckpt={smoke_run('sf2f')}", f"--port={port}"]
    server = subprocess.Popen(command, env=os.environ.copy(), stderr=subprocess.PIPE, text=True)
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, server.stderr.read() if server.poll() is not None else "no answer in 120 s"
        assert "<title>Talking faces</title>" in page or "Talking faces" in page
    finally:
        server.terminate()
        server.wait(timeout=30)
