"""GRPO, SFT and RPO losses: hand-derived values and finite-difference gradients."""

import math

import pytest
import torch
from torch.testing import assert_close

from cgrpo_core.losses import flow_matching_loss, gaussian_kl, grpo_loss, rpo_loss, velocity_error


class TestGRPO:
    def test_hand_values_with_clipping(self):
        # log-ratio 1 -> ratio e. A = +1: max(-e, -1.2) = -1.2. A = -1: max(e, 1.2) = e.
        old = torch.zeros(2)
        new = torch.ones(2)
        out = grpo_loss(new, old, torch.tensor([1.0, -1.0]), clip_range=0.2, kl_coef=0.0)
        assert_close(out.loss, torch.tensor((-1.2 + math.e) / 2))
        assert out.clip_fraction.item() == 1.0
        assert_close(out.ratio_mean, torch.tensor(math.e))
        assert_close(out.approx_kl, torch.tensor(0.5))

    def test_first_inner_step_ratio_is_one(self):
        # At theta == theta_old the ratio is exactly 1 and the loss is -mean(A).
        logp = torch.randn(12, 5)
        adv = torch.randn(12, 5)
        out = grpo_loss(logp, logp.clone(), adv, clip_range=1e-4, kl_coef=0.0)
        assert out.ratio_mean.item() == 1.0 and out.clip_fraction.item() == 0.0
        assert_close(out.loss, -adv.mean())

    def test_gradient_inside_the_clip_range_is_minus_a_ratio_over_n(self):
        new = torch.tensor([0.01, -0.02, 0.0], dtype=torch.float64, requires_grad=True)
        adv = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        grpo_loss(new, torch.zeros(3, dtype=torch.float64), adv, clip_range=0.2, kl_coef=0.0).loss.backward()
        assert_close(new.grad, -adv * torch.exp(new.detach()) / 3)

    def test_gradient_vanishes_when_clipped_on_the_improving_side(self):
        new = torch.tensor([1.0, -1.0], requires_grad=True)  # ratio e (A>0), 1/e (A<0): both clipped
        grpo_loss(new, torch.zeros(2), torch.tensor([1.0, -1.0]), clip_range=0.2, kl_coef=0.0).loss.backward()
        assert torch.equal(new.grad, torch.zeros(2))

    def test_finite_difference_gradient(self):
        torch.manual_seed(0)
        old = torch.randn(6, dtype=torch.float64)
        adv = torch.randn(6, dtype=torch.float64)
        new = (old + 0.3 * torch.randn(6, dtype=torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(
            lambda lp: grpo_loss(lp, old, adv, clip_range=0.1, kl_coef=0.0).loss, (new,)
        )

    def test_kl_is_off_by_default_and_adds_when_asked(self):
        logp, adv, kl = torch.zeros(4), torch.ones(4), torch.full((4,), 2.0)
        off = grpo_loss(logp, logp, adv, 0.1, 0.0, kl=kl)
        on = grpo_loss(logp, logp, adv, 0.1, 0.5, kl=kl)
        assert_close(off.loss, torch.tensor(-1.0))
        assert_close(on.loss, torch.tensor(-1.0 + 0.5 * 2.0))
        with pytest.raises(ValueError, match="kl_coef > 0 needs a kl"):
            grpo_loss(logp, logp, adv, 0.1, 0.1)

    def test_bad_input(self):
        with pytest.raises(ValueError, match="same shape"):
            grpo_loss(torch.zeros(3), torch.zeros(3), torch.zeros(4), 0.1, 0.0)
        with pytest.raises(ValueError, match="clip_range"):
            grpo_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.0, 0.0)


def test_gaussian_kl_matches_torch_distributions():
    mean, ref = torch.randn(3, 4, 2, dtype=torch.float64), torch.randn(3, 4, 2, dtype=torch.float64)
    std = 0.3
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std), torch.distributions.Normal(ref, std)
    ).mean(dim=(1, 2))
    assert_close(gaussian_kl(mean, ref, std), expected)
    per_sample_std = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    assert_close(gaussian_kl(mean, ref, per_sample_std)[2], gaussian_kl(mean[2:], ref[2:], 0.3)[0])


def test_flow_matching_loss_hand_value():
    x0, noise = torch.zeros(2, 2), torch.ones(2, 2)  # target velocity 1
    pred = torch.tensor([[1.0, 1.0], [3.0, 1.0]])  # squared errors: [0, 0] and [4, 0] -> per-sample [0, 2]
    assert_close(velocity_error(pred, x0, noise), torch.tensor([0.0, 2.0]))
    assert_close(flow_matching_loss(pred, x0, noise), torch.tensor(1.0))
    assert_close(flow_matching_loss(pred, x0, noise, weights=torch.tensor([1.0, 3.0])), torch.tensor(1.5))
    with pytest.raises(ValueError, match="same shape"):
        velocity_error(pred, x0, torch.ones(3, 2))


class TestRPO:
    def test_hand_value(self):
        # margin = (ref_w - pi_w) - (ref_l - pi_l) = (2 - 1) - (2 - 3) = 2
        # preference = -log sigmoid(2) = log(1 + e^-2) = 0.126928; similarity = mean([0.5, 1.5]) = 1
        out = rpo_loss(
            torch.tensor([1.0]),
            torch.tensor([2.0]),
            torch.tensor([3.0]),
            torch.tensor([2.0]),
            policy_err_sim=torch.tensor([0.5, 1.5]),
            beta=1.0,
            sim_weight=1.0,
        )
        assert_close(out.preference_loss, torch.tensor(math.log1p(math.exp(-2.0))))
        assert_close(out.similarity_loss, torch.tensor(1.0))
        assert_close(out.loss, torch.tensor(math.log1p(math.exp(-2.0)) + 1.0))
        assert out.accuracy.item() == 1.0 and out.margin.item() == 2.0

    def test_equal_models_give_log_two(self):
        err = torch.rand(5)
        out = rpo_loss(err, err, err.flip(0), err.flip(0), None, beta=3.0, sim_weight=1.0)
        assert_close(out.preference_loss, torch.tensor(math.log(2.0)))
        assert out.similarity_loss.item() == 0.0

    def test_finite_difference_gradient(self):
        ref_w, ref_l = torch.rand(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64)
        pw = torch.rand(4, dtype=torch.float64, requires_grad=True)
        pl = torch.rand(4, dtype=torch.float64, requires_grad=True)
        sim = torch.rand(3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda a, b, c: rpo_loss(a, ref_w, b, ref_l, policy_err_sim=c, beta=2.0, sim_weight=0.5).loss,
            (pw, pl, sim),
        )

    def test_lowering_the_winner_error_lowers_the_loss(self):
        ref = torch.ones(3)
        worse = rpo_loss(torch.ones(3), ref, torch.ones(3), ref, None, 1.0, 1.0).loss
        better = rpo_loss(torch.full((3,), 0.5), ref, torch.ones(3), ref, None, 1.0, 1.0).loss
        assert better < worse

    def test_bad_input(self):
        with pytest.raises(ValueError, match="one shape"):
            rpo_loss(torch.zeros(3), torch.zeros(3), torch.zeros(2), torch.zeros(3), None, 1.0, 1.0)
        with pytest.raises(ValueError, match="beta > 0"):
            rpo_loss(
                torch.zeros(3), torch.zeros(3), torch.zeros(3), torch.zeros(3), None, beta=0.0, sim_weight=1.0
            )
