"""A full disk, an exhausted quota, a read-only mount or a missing permission is the user's to fix: every
command ends with one `error: <path>: …` line, no traceback, and leaves nothing at OUT."""

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datamodules.errors import ENVIRONMENT_ERRORS, REPORT_HINT, command_errors
from datamodules.pipeline.files import atomic_write_text
from experiments.infer import write_faces
from lightning_modules.common.metrics.reports import EvaluationReport, ResultRow
from tests.failing_writes import failing_writes

REPO = Path(__file__).resolve().parents[1]
ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}


def error_line(capsys, body, **variables: str) -> str:
    """What `command_errors(**variables)` ends `body()` with; no traceback and no bug report may come with
    it."""
    with pytest.raises(SystemExit) as ended:
        with command_errors(debug=False, **variables):
            body()
    printed = capsys.readouterr().err
    assert "Traceback" not in printed and REPORT_HINT not in printed
    return str(ended.value.code)


@pytest.mark.parametrize("code", sorted(ERRNOS), ids=[errno.errorcode[c] for c in sorted(ERRNOS)])
def test_each_environment_error_is_one_line_naming_the_file(code, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    refused = failing_writes(monkeypatch, out, code)
    line = error_line(capsys, lambda: atomic_write_text(out / "metrics.json", "{}"))
    assert line.startswith(f"error: {out / 'metrics.json'}: {ERRNOS[code]}. ") and "\n" not in line
    assert line.endswith(f"{ENVIRONMENT_ERRORS[code][1].format(output='OUT')}.")
    assert refused and list(out.iterdir()) == []  # a full disk's empty temporary file was deleted


def test_the_advice_names_the_commands_output_variable(tmp_path, monkeypatch, capsys):
    failing_writes(monkeypatch, tmp_path, errno.ENOSPC)
    line = error_line(capsys, lambda: atomic_write_text(tmp_path / "a.json", "{}"), output="TF_RUNS_DIR")
    assert "write elsewhere (TF_RUNS_DIR=<another folder>)" in line and "OUT=" not in line


class FaceModel:
    """Stands in for a face system: a grey face for any speech."""

    speech_rate = 16000

    def face_from_speech(self, speech):
        return np.full((16, 16, 3), 128, dtype=np.uint8)


def test_a_face_picture_on_a_full_disk_leaves_nothing_at_out(tmp_path, monkeypatch, capsys):
    speech = tmp_path / "speech.wav"
    sf.write(speech, np.zeros(8000, dtype=np.float32), 16000)
    out = tmp_path / "out"
    out.mkdir()
    failing_writes(monkeypatch, out, errno.ENOSPC)
    line = error_line(capsys, lambda: write_faces(FaceModel(), [str(speech)], out / "face.png"))
    assert line.startswith(f"error: {out / 'face.png'}: no space left on the device.")
    assert list(out.iterdir()) == []  # no 0-byte face.png


def test_evaluation_files_on_a_full_disk_leave_nothing_and_keep_the_old_ones(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "eval"
    report = EvaluationReport("sf2f", "demo", "paper", rows=[ResultRow("R@1", "test", 0.5)])
    report.write(folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    report.rows[0].ours = 0.75
    failing_writes(monkeypatch, folder, errno.EDQUOT)
    line = error_line(capsys, lambda: report.write(folder))
    assert line.startswith(f"error: {folder / 'metrics.json'}: disk quota exceeded.")
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def mount_tmpfs_works() -> bool:
    """Whether this machine lets an unprivileged user namespace mount a tmpfs (a real full disk)."""
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt || exit 1"]
    return subprocess.run(probe, capture_output=True).returncode == 0


WRITE_VIDEO = """
import sys
import numpy as np
from datamodules.errors import command_errors
from datamodules.pipeline.video_writer import write_mp4

with command_errors(debug=False):
    noise = np.random.default_rng(0).integers(0, 255, (25, 64, 64, 3), dtype=np.uint8)
    write_mp4(sys.argv[1], noise, fps=25, audio=np.zeros(16000, np.float32), sample_rate=16000)
"""


@pytest.mark.skipif(not mount_tmpfs_works(), reason="cannot mount a tmpfs in a user namespace here")
def test_a_video_on_a_real_full_disk_is_one_error_line_and_leaves_nothing(tmp_path):
    """FFmpeg writes the mp4 itself (no Python write to intercept): a 16 KiB tmpfs fills up for real."""
    full = tmp_path / "full"
    full.mkdir()
    script = tmp_path / "write_video.py"
    script.write_text(WRITE_VIDEO)
    command = (
        f"mount -t tmpfs -o size=16k tmpfs {full} && "
        f"{sys.executable} {script} {full / 'out.mp4'}; status=$?; ls -A {full}; exit $status"
    )
    ended = subprocess.run(
        ["unshare", "-rm", "sh", "-c", command],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ended.returncode == 1
    assert ended.stderr.strip() == (
        f"error: {full / 'out.mp4'}: no space left on the device. "
        f"{ENVIRONMENT_ERRORS[errno.ENOSPC][1].format(output='OUT')}."
    )
    assert ended.stdout.strip() == ""  # `ls -A` of the full disk: no file left behind
