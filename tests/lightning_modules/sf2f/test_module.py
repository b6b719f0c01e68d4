"""SF2FModule on the tiny fixture: both stages train, stage 2 leaves the frozen trunk untouched."""

import lightning as L
import pytest
import torch

from datamodules.hq_voxceleb import HQVoxCelebDataModule
from lightning_modules.common.errors import CheckpointError, WeightsError
from lightning_modules.sf2f.module import SF2FModule


def make_module_args(**overrides):
    args = dict(
        width_scale=0.25,
        perceptual_weight=100.0,
        allow_random_facenet=True,
        embedder="dlib",
        num_identities=16,
    )
    return {**args, **overrides}


def make_datamodule(root, tmp_path, **overrides):
    args = dict(
        root=str(root),
        cache_dir=str(tmp_path / "cache"),
        batch_size=4,
        eval_batch_size=4,
        num_workers=0,
        prepare_workers=0,
    )
    return HQVoxCelebDataModule(**{**args, **overrides})


def fit(module, datamodule, tmp_path, steps=4):
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        val_check_interval=2,
        default_root_dir=tmp_path,
        enable_checkpointing=False,
    )
    trainer.fit(module, datamodule)
    return trainer


@pytest.fixture(scope="module")
def stage_one(tiny_hq_voxceleb, tmp_path_factory):
    """A stage-1 model trained for a few steps, its checkpoint, and the parameters before training."""
    tmp_path = tmp_path_factory.mktemp("stage1")
    torch.manual_seed(0)
    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path)
    module = SF2FModule(**make_module_args(num_identities=datamodule.num_identities))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = fit(module, datamodule, tmp_path)
    checkpoint = tmp_path / "stage1.ckpt"
    trainer.save_checkpoint(checkpoint)
    return module, before, checkpoint, trainer


def test_stage_one_losses_finite_and_all_networks_learn(stage_one):
    module, before, _, trainer = stage_one
    metrics = trainer.callback_metrics
    for key in ("train/g_loss", "train/d_loss", "train/g_l1", "train/g_perceptual", "val/l1", "val/r@1"):
        assert torch.isfinite(metrics[key]), key
    for prefix in ("voice_encoder.", "face_decoder.", "patch_critics.", "identity_critics."):
        changed = [
            k
            for k, v in module.state_dict().items()
            if k.startswith(prefix) and v.is_floating_point() and not torch.equal(v, before[k])
        ]
        assert changed, f"no {prefix} parameter changed"


def test_stage_two_trains_only_the_fuser(stage_one, tiny_hq_voxceleb, tmp_path):
    _, _, checkpoint, _ = stage_one
    datamodule = make_datamodule(tiny_hq_voxceleb, tmp_path, segments=3, eval_frames=250)
    module = SF2FModule(
        **make_module_args(num_identities=datamodule.num_identities, stage="fuser", init_from=str(checkpoint))
    )
    trainable = {n.split(".")[0] for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"fuser", "patch_critics", "identity_critics"}
    before = {k: v.clone() for k, v in module.state_dict().items()}
    fit(module, datamodule, tmp_path)
    after = module.state_dict()
    frozen = [k for k in after if k.startswith(("voice_encoder.", "face_decoder."))]
    assert any("running_mean" in k for k in frozen)  # BatchNorm statistics are part of what must not move
    assert all(torch.equal(after[k], before[k]) for k in frozen)
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("fuser."))
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("patch_critics."))


def test_fuser_windows_at_evaluation_use_the_papers_hop():
    module = SF2FModule(**make_module_args(stage="fuser"))
    windows = module._windows(torch.zeros(2, 40, 500))
    assert windows.shape == (2, 6, 40, 125)  # 5 s, hop 63 → 6 windows


def test_missing_facenet_weights_fail_before_training():
    module = SF2FModule(**make_module_args(allow_random_facenet=False))
    with pytest.raises(WeightsError, match="facenet_weights"):
        module.on_fit_start()


def test_init_from_a_mismatched_checkpoint_lists_the_mismatch(stage_one):
    _, _, checkpoint, _ = stage_one
    with pytest.raises(CheckpointError, match="Shape mismatches"):
        SF2FModule(**make_module_args(stage="fuser", width_scale=0.5, init_from=str(checkpoint)))
