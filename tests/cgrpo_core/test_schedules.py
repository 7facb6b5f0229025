"""TDW weights (Eq. 12) against values computed directly from the equation."""

import math
import typing

import pytest
import torch
from torch.testing import assert_close

from cgrpo_core.config import ScheduleName
from cgrpo_core.schedules import SCHEDULES, TDWShape, identity_weights, prompt_weights


def eq12(k: int, w_max=0.7, w_min=0.3, lam=0.8, t_c=10.0, final=None) -> float:
    """Eq. 12 in step-index form (k = 0 noisiest), phases of appendix A."""
    if k < 6:
        return w_max
    if k >= 22:
        return w_min if final is None else final
    return w_min + (w_max - w_min) * (1.0 - 1.0 / (1.0 + math.exp(-lam * (k - t_c))))


def test_paper_schedule_matches_eq12():
    expected = torch.tensor([eq12(k) for k in range(25)], dtype=torch.float64)
    assert_close(prompt_weights("paper", 25, dtype=torch.float64), expected)


def test_paper_hand_values():
    w = prompt_weights("paper", 25, dtype=torch.float64)
    # k = 6: 0.3 + 0.4 * sigmoid(3.2) = 0.3 + 0.4 * 0.960834 = 0.684334; k = 10: the midpoint 0.5
    assert w[5].item() == 0.7 and w[22].item() == 0.3 and w[24].item() == 0.3
    assert w[6].item() == pytest.approx(0.684334, abs=1e-6)
    assert w[10].item() == pytest.approx(0.5, abs=1e-12)


def test_released_differs_only_in_the_identity_phase():
    paper = prompt_weights("paper", 25, dtype=torch.float64)
    released = prompt_weights("released", 25, dtype=torch.float64)
    assert_close(released[:22], paper[:22])
    assert torch.equal(released[22:], torch.full((3,), 0.5, dtype=torch.float64))


def test_inverted_is_the_paper_curve_reversed_in_time():
    paper = prompt_weights("paper", 25)
    inverted = prompt_weights("inverted", 25)
    assert_close(inverted, paper.flip(0))
    assert inverted[0].item() == pytest.approx(0.3) and inverted[-1].item() == pytest.approx(0.7)


def test_static_is_constant():
    assert torch.equal(prompt_weights("static", 7, 0.6, 0.6), torch.full((7,), 0.6))
    assert_close(prompt_weights("static", 7), torch.full((7,), 0.5))


def test_equal_bounds_reduce_tdw_to_static():
    for name in ("paper", "inverted"):
        assert_close(prompt_weights(name, 25, 0.4, 0.4), prompt_weights("static", 25, 0.4, 0.4))
    released = prompt_weights("released", 25, 0.4, 0.4, identity_weight=0.4)
    assert_close(released, prompt_weights("static", 25, 0.4, 0.4))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("bounds", [(0.7, 0.3), (1.0, 0.0), (0.9, 0.1), (0.55, 0.45)])
@pytest.mark.parametrize("num_steps", [1, 4, 10, 25, 50])
def test_weights_stay_within_bounds(name, bounds, num_steps):
    w_max, w_min = bounds
    extra = {"identity_weight": (w_max + w_min) / 2} if name == "released" else {}
    w = prompt_weights(name, num_steps, w_max, w_min, **extra)
    assert w.shape == (num_steps,)
    assert (w >= w_min).all() and (w <= w_max).all()
    # prompt_weights clamps away float rounding; the schedule itself must already be in bounds
    raw = SCHEDULES[name](num_steps, w_max, w_min, TDWShape(), **extra)
    assert (raw >= w_min - 1e-12).all() and (raw <= w_max + 1e-12).all()
    assert_close(identity_weights(w) + w, torch.ones(num_steps))


def test_paper_is_monotone_non_increasing_and_inverted_non_decreasing():
    assert (prompt_weights("paper", 25).diff() <= 0).all()
    assert (prompt_weights("inverted", 25).diff() >= 0).all()


def test_other_step_counts_keep_the_shape_in_normalised_time():
    w50 = prompt_weights("paper", 50, dtype=torch.float64)
    # boundaries 6 -> 12 and 22 -> 44, centre 10 -> 20
    assert w50[11].item() == 0.7 and w50[12].item() < 0.7
    assert w50[43].item() > 0.3 and w50[44].item() == 0.3
    assert w50[20].item() == pytest.approx(0.5, abs=1e-12)


def test_custom_shape():
    w = prompt_weights(
        "paper", 10, shape=TDWShape(prompt_phase_end=2.5, identity_phase_start=25.0, center=5.0)
    )
    # T=10: prompt phase ends at 2.5 * 10/25 = 1 step, identity phase starts at 10 steps (none)
    assert w[0].item() == pytest.approx(0.7) and w[1].item() < 0.7 and w[-1].item() > 0.3


def test_registry_matches_config_literal():
    assert set(SCHEDULES) == set(typing.get_args(ScheduleName))


def test_errors_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"unknown TDW schedule 'cosine'.*'inverted', 'paper'"):
        prompt_weights("cosine")
    with pytest.raises(ValueError, match="w_min <= w_max"):
        prompt_weights("paper", w_max=0.3, w_min=0.7)
    with pytest.raises(ValueError, match="num_steps"):
        prompt_weights("paper", num_steps=0)
    with pytest.raises(ValueError, match="unexpected options"):
        prompt_weights("paper", identity_weight=0.5)
    with pytest.raises(ValueError, match="identity_weight"):
        prompt_weights("released", identity_weight=0.9)
