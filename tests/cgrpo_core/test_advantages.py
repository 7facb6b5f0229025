"""Group advantages and their combinations (Eq. 8-11, Table 3), against hand-derived numbers."""

import math
import typing

import pytest
import torch
from torch.testing import assert_close

from cgrpo_core.advantages import AGGREGATORS, combine_advantages, conflict_stats, group_normalize
from cgrpo_core.training.config import AdvantageMethod


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def combine(a_id, a_prompt, w_id, w_prompt, method="sars", alpha=0.5, clip=None):
    """combine_advantages with this file's usual values spelled out (the function has no defaults)."""
    return combine_advantages(a_id, a_prompt, w_id, w_prompt, method=method, alpha=alpha, clip=clip)


def test_a_forgotten_parameter_fails_instead_of_defaulting():
    a = t([[1.0, -1.0]])
    with pytest.raises(TypeError):
        combine_advantages(a, a, 0.5, 0.5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        combine_advantages(a, a, 0.5, 0.5, method="sars", alpha=0.5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        group_normalize(a)  # type: ignore[call-arg]


class TestGroupNormalize:
    def test_hand_values(self):
        # [1, 2, 3]: mean 2, Bessel std sqrt((1 + 0 + 1) / 2) = 1  ->  [-1, 0, 1]
        assert_close(group_normalize(t([[1.0, 2.0, 3.0]]), eps=0.0), t([[-1.0, 0.0, 1.0]]))

    def test_population_std(self):
        # [1, 3]: mean 2, population std 1 -> [-1, 1]; Bessel std sqrt(2) -> [-0.7071, 0.7071]
        assert_close(group_normalize(t([[1.0, 3.0]]), eps=0.0, unbiased=False), t([[-1.0, 1.0]]))
        assert_close(group_normalize(t([[1.0, 3.0]]), eps=0.0), t([[-1.0, 1.0]]) / math.sqrt(2))

    def test_ties_within_a_group(self):
        # [1, 1, 2, 2]: mean 1.5, Bessel std sqrt(4 * 0.25 / 3) = 0.57735 -> +-0.5 / 0.57735 = +-0.866025
        out = group_normalize(t([[1.0, 1.0, 2.0, 2.0]]), eps=0.0)
        assert_close(out, t([[-0.866025, -0.866025, 0.866025, 0.866025]]), atol=1e-6, rtol=0)

    def test_groups_are_independent(self):
        out = group_normalize(t([[1.0, 2.0, 3.0], [10.0, 30.0, 20.0]]), eps=0.0)
        assert_close(out, t([[-1.0, 0.0, 1.0], [-1.0, 1.0, 0.0]]))

    def test_all_equal_rewards_give_zero_advantage(self):
        out = group_normalize(t([[0.7, 0.7, 0.7, 0.7], [1.0, 2.0, 3.0, 4.0]]), eps=1e-8)
        assert torch.equal(out[0], torch.zeros(4, dtype=torch.float64))
        assert torch.isfinite(out).all()

    def test_scale_invariance(self):
        r = torch.randn(3, 12, dtype=torch.float64)
        assert_close(group_normalize(5.0 * r + 7.0, eps=0.0), group_normalize(r, eps=0.0))

    def test_group_of_one_is_an_error(self):
        with pytest.raises(ValueError, match="group size G must be >= 2"):
            group_normalize(t([[1.0], [2.0]]), eps=1e-8)

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite_rewards_are_an_error(self, bad):
        with pytest.raises(ValueError, match=r"finite.*\[prompt, sample\] \[\(1, 2\)\]"):
            group_normalize(t([[1.0, 2.0, 3.0], [1.0, 2.0, bad]]), eps=1e-8)

    @pytest.mark.parametrize("shape", [(12,), (2, 3, 4)])
    def test_wrong_shape(self, shape):
        with pytest.raises(ValueError, match=r"shape \[B, G\]"):
            group_normalize(torch.zeros(shape), eps=1e-8)


class TestCombine:
    def test_linear_hand_values(self):
        # 0.3 * [1, -1] + 0.7 * [2, 0.5] = [1.7, 0.05]
        out = combine(t([[1.0, -1.0]]), t([[2.0, 0.5]]), 0.3, 0.7, method="linear")
        assert_close(out, t([[1.7, 0.05]]))

    def test_sars_hand_values(self):
        # w = 0.5 / 0.5, alpha = 0.5, tanh(2) = 0.9640276
        a_id = t([[1.0, -1.0, 1.0, 0.0, 0.0]])
        a_pr = t([[2.0, -2.0, -2.0, 0.0, -1.0]])
        expected = [
            1.5 + 0.5 * math.tanh(2.0),  # both positive: amplified
            -1.5 - 0.5 * math.tanh(2.0),  # both negative: tanh(+2) subtracted
            -0.5 + 0.5 * math.tanh(-2.0),  # conflict: tanh(-2) added -> penalty
            0.0,  # zero product
            -0.5,  # both <= 0, product 0: no synergy term
        ]
        out = combine(a_id, a_pr, 0.5, 0.5, method="sars", alpha=0.5)
        assert_close(out, t([expected]))

    def test_sars_with_alpha_zero_is_linear(self):
        a, b = torch.randn(4, 12), torch.randn(4, 12)
        w = torch.linspace(0.3, 0.7, 25)
        assert_close(
            combine(a, b, 1 - w, w, method="sars", alpha=0.0),
            combine(a, b, 1 - w, w, method="linear"),
        )

    def test_sars_moves_each_case_the_right_way(self):
        a, b = torch.randn(50, 12), torch.randn(50, 12)
        lin = combine(a, b, 0.5, 0.5, method="linear")
        sars = combine(a, b, 0.5, 0.5, method="sars", alpha=0.5)
        both_pos, both_neg, conflict = (a > 0) & (b > 0), (a < 0) & (b < 0), (a * b < 0)
        assert (sars[both_pos] > lin[both_pos]).all()
        assert (sars[both_neg] < lin[both_neg]).all()
        assert (sars[conflict] < lin[conflict]).all()
        assert ((sars - lin).abs() <= 0.5 + 1e-6).all()  # |alpha * tanh| <= alpha

    def test_per_step_weights_give_one_slice_per_step(self):
        a, b = torch.randn(2, 12), torch.randn(2, 12)
        w_prompt = torch.tensor([0.7, 0.5, 0.3])
        out = combine(a, b, 1 - w_prompt, w_prompt, method="sars", alpha=0.5)
        assert out.shape == (2, 12, 3)
        for step in range(3):
            wp = float(w_prompt[step])
            assert_close(out[..., step], combine(a, b, 1 - wp, wp, method="sars", alpha=0.5))

    def test_min_max_hand_values_ignore_weights(self):
        a, b = t([[1.0, -2.0]]), t([[0.5, 3.0]])
        assert_close(combine(a, b, 0.9, 0.1, method="min"), t([[0.5, -2.0]]))
        assert_close(combine(a, b, 0.1, 0.9, method="max"), t([[1.0, 3.0]]))
        per_step = combine(a, b, torch.tensor([0.2, 0.8]), torch.tensor([0.8, 0.2]), method="min")
        assert per_step.shape == (1, 2, 2)
        assert_close(per_step[..., 0], per_step[..., 1])

    def test_harmonic_hand_value(self):
        # a = b = 1, w = 0.5: linear 1, bonus 0.5 * 1 / (2 + 1e-6) = 0.25 (released code's formula)
        out = combine(t([[1.0]]), t([[1.0]]), 0.5, 0.5, method="harmonic", alpha=0.5)
        assert_close(out, t([[1.0 + 0.5 / (2.0 + 1e-6)]]))

    def test_harmonic_stays_finite_where_the_denominator_vanishes(self):
        a = t([[0.5]])
        b = t([[-0.5 - 1e-6]])  # a + b + eps == 0 exactly in the released formula
        out = combine(a, b, 0.5, 0.5, method="harmonic", alpha=0.5)
        assert torch.isfinite(out).all()

    def test_clip(self):
        out = combine(t([[10.0, -10.0, 1.0]]), t([[10.0, -10.0, 1.0]]), 0.5, 0.5, "linear", clip=5.0)
        assert_close(out, t([[5.0, -5.0, 1.0]]))

    def test_float32_inputs_stay_float32(self):
        out = combine(torch.randn(1, 4), torch.randn(1, 4), 0.5, 0.5)
        assert out.dtype == torch.float32

    def test_errors_say_what_is_allowed(self):
        a = torch.zeros(2, 4)
        with pytest.raises(ValueError, match=r"unknown advantage method 'tanh'.*'harmonic', 'linear', 'max'"):
            combine(a, a, 0.5, 0.5, method="tanh")
        with pytest.raises(ValueError, match=r"\[B, G\]"):
            combine(a, torch.zeros(2, 5), 0.5, 0.5)
        with pytest.raises(ValueError, match="same shape"):
            combine(a, a, torch.ones(3), torch.ones(4))
        with pytest.raises(ValueError, match="scalar or a \\[T\\]"):
            combine(a, a, torch.ones(2, 2), torch.ones(2, 2))
        with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
            combine(a, a, 0.5, 0.5, alpha=-0.1)
        with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
            combine(a, a, 0.5, 0.5, alpha=float("nan"))
        nan_at = a.clone()
        nan_at[1, 2] = float("nan")
        with pytest.raises(ValueError, match=r"a_prompt has a non-finite value \(nan\) at index \(1, 2\)"):
            combine(a, nan_at, 0.5, 0.5)
        with pytest.raises(ValueError, match="a_id has a non-finite value"):
            conflict_stats(nan_at, a)
        with pytest.raises(ValueError, match="finite"):
            combine(a, a, float("nan"), 0.5)
        with pytest.raises(ValueError, match="clip"):
            combine(a, a, 0.5, 0.5, clip=0.0)


def test_registry_matches_config_literal():
    assert set(AGGREGATORS) == set(typing.get_args(AdvantageMethod))


@pytest.mark.parametrize("method", sorted(AGGREGATORS))
def test_every_method_keeps_the_sign_of_agreeing_advantages(method):
    a, b = torch.rand(8, 12) + 0.1, torch.rand(8, 12) + 0.1
    w = torch.linspace(0.3, 0.7, 5)
    pos = combine(a, b, 1 - w, w, method=method, alpha=0.5)
    neg = combine(-a, -b, 1 - w, w, method=method, alpha=0.5)
    assert pos.shape == neg.shape == (8, 12, 5)
    assert torch.isfinite(pos).all() and torch.isfinite(neg).all()
    assert (pos > 0).all() and (neg < 0).all()


def test_conflict_stats_hand_values():
    a_id = t([[1.0, -1.0, 1.0, -1.0, 0.0]])
    a_pr = t([[1.0, -1.0, -1.0, 1.0, 1.0]])
    assert conflict_stats(a_id, a_pr) == {
        "both_positive": 0.2,
        "both_negative": 0.2,
        "conflict": 0.4,
        "neutral": 0.2,
    }


def test_conflict_stats_of_independent_advantages_is_about_half_conflict():
    # Independent symmetric advantages: P(opposite signs) = 1/2 (the paper measured 50.2%, Fig. 7a).
    g = torch.Generator().manual_seed(1)
    stats = conflict_stats(torch.randn(300, 12, generator=g), torch.randn(300, 12, generator=g))
    assert abs(stats["conflict"] - 0.5) < 0.03
    assert math.isclose(sum(stats.values()), 1.0)
