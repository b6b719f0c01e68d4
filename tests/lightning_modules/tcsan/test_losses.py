"""TCSAN's losses on known inputs."""

import math

import numpy as np
import torch

from lightning_modules.tcsan.losses import (
    au_class_weights,
    au_loss,
    masked_frame_l1,
    upper_half_l1,
    weighted_bce,
    weighted_dice,
)


def frames(batch=2, length=3, size=16):
    return torch.rand(batch, length, 3, size, size) * 2 - 1


def test_reconstruction_and_identity_terms_vanish_on_a_still_identity():
    identity = torch.rand(2, 3, 16, 16) * 2 - 1
    video = identity[:, None].expand(-1, 3, -1, -1, -1)
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert masked_frame_l1(video, video, mask) == 0
    assert upper_half_l1(video, identity, mask) == 0


def test_identity_loss_has_no_gradient_below_the_middle_row():
    generated = frames().requires_grad_(True)
    upper_half_l1(generated, torch.zeros(2, 3, 16, 16), torch.ones(2, 3, dtype=torch.bool)).backward()
    assert (generated.grad[..., 8:, :] == 0).all() and (generated.grad[..., :8, :] != 0).any()


def test_padded_frames_do_not_count():
    generated, real = frames(), frames()
    mask = torch.tensor([[True, True, False], [True, False, False]])
    changed = generated.clone()
    changed[0, 2] = 5.0
    changed[1, 1:] = -7.0
    assert masked_frame_l1(changed, real, mask) == masked_frame_l1(generated, real, mask)
    identity = torch.zeros(2, 3, 16, 16)
    assert upper_half_l1(changed, identity, mask) == upper_half_l1(generated, identity, mask)


def test_class_weights_sum_to_the_number_of_aus():
    assert torch.allclose(au_class_weights([0.3] * 5), torch.ones(5))
    weights = au_class_weights([0.5, 0.1, 0.2, 0.8, 0.4])
    assert math.isclose(float(weights.sum()), 5.0, rel_tol=1e-6)
    assert weights[1] == weights.max()  # the rarest AU weighs most
    guarded = au_class_weights([0.001, 0.0, 0.05, 0.5, 0.1])  # rare or absent AUs count as 5 %
    assert torch.allclose(guarded[:3], guarded[0].expand(3)) and math.isclose(
        float(guarded.sum()), 5.0, rel_tol=1e-6
    )
    assert math.isclose(float(guarded[0] / guarded[3]), 10.0, rel_tol=1e-5)


def test_bce_matches_a_hand_computed_example():
    p = torch.tensor([[0.9, 0.2, 0.6, 0.5, 0.99], [0.1, 0.7, 0.3, 0.5, 0.01]])
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0, 0.0]])
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 0.5])
    by_hand = np.mean(
        [
            np.mean(
                [
                    -w[i].item()
                    * (
                        y[n, i].item() * math.log(p[n, i].item())
                        + (1 - y[n, i].item()) * math.log(1 - p[n, i].item())
                    )
                    for i in range(5)
                ]
            )
            for n in range(2)
        ]
    )
    assert math.isclose(float(weighted_bce(p, y, w)), by_hand, rel_tol=1e-6)


def test_dice_is_zero_for_perfect_predictions_and_half_a_weight_for_a_false_positive():
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0]])
    w = torch.tensor([1.0, 3.0, 1.0, 1.0, 1.0])
    assert weighted_dice(y.clone(), y, w) == 0
    wrong = y.clone()
    wrong[0, 1] = 1.0  # y = 0, ŷ = 1 on AU14: that AU's term is 0.5·w, averaged over 5 AUs
    assert math.isclose(float(weighted_dice(wrong, y, w)), 0.5 * 3.0 / 5, rel_tol=1e-6)
    # Over two samples (the wrong one and a perfect one): per sample (0.3 + 0) / 2; JAA-Net's pooled form
    # sums over the batch first, so the single false positive keeps its full 0.3.
    pair, targets = torch.cat([wrong, y]), torch.cat([y, y])
    assert math.isclose(float(weighted_dice(pair, targets, w)), 0.15, rel_tol=1e-6)
    assert math.isclose(float(weighted_dice(pair, targets, w, pooled=True)), 0.3, rel_tol=1e-6)


def test_au_loss_skips_unlabelled_frames_and_has_no_gradient_without_labels():
    p = torch.rand(2, 4, 5, requires_grad=True)
    y = (torch.rand(2, 4, 5) > 0.5).float()
    valid = torch.tensor([[True, False, True, True], [False, False, True, False]])
    changed = p.detach().clone()
    changed[~valid] = 0.5
    assert torch.allclose(au_loss(p, y, valid, torch.ones(5)), au_loss(changed, y, valid, torch.ones(5)))
    none = au_loss(p, y, torch.zeros(2, 4, dtype=torch.bool), torch.ones(5))
    none.backward()
    assert none == 0 and (p.grad == 0).all()
