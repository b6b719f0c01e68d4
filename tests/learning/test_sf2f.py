"""SF2F learns voice → face: faces generated from held-out speakers' speech are retrieved among the test
identities well above chance and above the control (each face generated from another speaker's speech),
over three training seeds, on demo data generated with a seed no recipe was tuned on (issue 30).

The data is the demo HQ-VoxCeleb's `many_speakers` size: 300 synthetic speakers, 240 train / 30 val / 30
held-out test identities (the demo's 10 test identities leave an interval over identities too wide to
assert anything: measured, [0.13, 0.61] around a mean R@1 of 0.37). Reductions (stated as the issue
allows): stage 1 only (no fuser, `--stop-after sf2f`), 400 iterations of batch 16 (the
demo runs 1600), no perceptual loss and the `thumbnail` embedder, because FaceNet's weights are not
available offline (docs/sf2f.md explains the proxy). The demo speakers' faces follow their voices through
shared latents (pitch → skin tint, vocal-tract length → face size, …): a model can only beat chance by
hearing them. Each seed's run is scored by the paper's protocol (10 runs of one random clip per identity);
every identity's hit in every run is kept, and the interval resamples identities, their runs and the seeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.checkpoints import load_run_for_evaluation
from lightning_modules.common.metrics.identity_metrics import recall_hits
from lightning_modules.sf2f.evaluation import embed_run
from tests.learning.intervals import FRESH_DATA, ClipScores, assert_above_bar_and_controls, seeded_intervals

pytestmark = pytest.mark.slow

RECIPE = [
    "--data.init_args.demo_size=many_speakers",
    "--trainer.max_steps=400",
    "--trainer.check_val_every_n_epoch=10",
    *FRESH_DATA,
]
PROTOCOL_RUNS = 10  # the paper's: each run draws one random clip per identity
TEST_IDENTITIES = 30
CHANCE = 1 / TEST_IDENTITIES
BARS = {"r@1": 2 * CHANCE}  # on the interval's lower end, which must also clear the control's upper end


def retrieval_hits(run_dir: Path, seed: int) -> list[ClipScores]:
    """Per protocol run and test identity: was it retrieved first from the face of its own speech (`r@1`),
    and from the face of the next identity's speech (`r@1_control`, a voice-blind model's score)?"""
    model, datamodule = load_run_for_evaluation("sf2f", run_dir)
    scored = []
    for run in range(PROTOCOL_RUNS):
        generated, reference, _ = embed_run(model.eval(), datamodule.random_clip_test_loader(run))
        block = model.hparams.recall_block  # the blocking make eval's R@1 uses
        own = recall_hits(generated, reference, 1, block)
        control = recall_hits(generated.roll(-1, 0), reference, 1, block)
        assert len(own) == TEST_IDENTITIES, f"the demo's test split has {len(own)} identities"
        for identity in range(len(own)):
            values = {"r@1": float(own[identity]), "r@1_control": float(control[identity])}
            scored.append(ClipScores(seed, str(identity), run, values))
    return scored


def test_sf2f_retrieves_held_out_speakers_from_their_voices(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_RUNS_DIR", str(tmp_path))
    intervals = seeded_intervals("sf2f", RECIPE, retrieval_hits, ["r@1", "r@1_control"], stop_after="sf2f")
    assert_above_bar_and_controls(intervals, BARS, ("_control",))
