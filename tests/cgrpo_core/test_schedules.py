"""TDW weights (Eq. 12) against values computed directly from the equation."""

import math
import typing

import pytest
import torch
from torch.testing import assert_close

from cgrpo_core import schedules
from cgrpo_core.config import experiment_config
from cgrpo_core.schedules import SCHEDULES, TDWShape, identity_weights, prompt_weights, tdw_weights
from cgrpo_core.schema import override
from cgrpo_core.training.config import ScheduleName, TDWConfig

APPENDIX = TDWShape(prompt_phase_end=6.0, identity_phase_start=22.0, center=10.0, slope=0.8)


def pw(name, num_steps=25, w_max=0.7, w_min=0.3, shape=APPENDIX, identity_weight=0.5, dtype=torch.float32):
    """prompt_weights with the appendix's values spelled out (the function has no defaults)."""
    return prompt_weights(name, num_steps, w_max, w_min, shape, identity_weight, dtype)


def eq12(k: int, w_max=0.7, w_min=0.3, lam=0.8, t_c=10.0, final=None) -> float:
    """Eq. 12 in step-index form (k = 0 noisiest), phases of appendix A."""
    if k < 6:
        return w_max
    if k >= 22:
        return w_min if final is None else final
    return w_min + (w_max - w_min) * (1.0 - 1.0 / (1.0 + math.exp(-lam * (k - t_c))))


def test_paper_schedule_matches_eq12():
    expected = torch.tensor([eq12(k) for k in range(25)], dtype=torch.float64)
    assert_close(pw("paper", 25, dtype=torch.float64), expected)


def test_paper_hand_values():
    w = pw("paper", 25, dtype=torch.float64)
    # k = 6: 0.3 + 0.4 * sigmoid(3.2) = 0.3 + 0.4 * 0.960834 = 0.684334; k = 10: the midpoint 0.5
    assert w[5].item() == 0.7 and w[22].item() == 0.3 and w[24].item() == 0.3
    assert w[6].item() == pytest.approx(0.684334, abs=1e-6)
    assert w[10].item() == pytest.approx(0.5, abs=1e-12)


def test_released_differs_only_in_the_identity_phase():
    paper = pw("paper", 25, dtype=torch.float64)
    released = pw("released", 25, dtype=torch.float64)
    assert_close(released[:22], paper[:22])
    assert torch.equal(released[22:], torch.full((3,), 0.5, dtype=torch.float64))


def test_inverted_is_the_paper_curve_reversed_in_time():
    paper = pw("paper", 25)
    inverted = pw("inverted", 25)
    assert_close(inverted, paper.flip(0))
    assert inverted[0].item() == pytest.approx(0.3) and inverted[-1].item() == pytest.approx(0.7)


def test_static_is_constant():
    assert torch.equal(pw("static", 7, 0.6, 0.6), torch.full((7,), 0.6))
    assert_close(pw("static", 7), torch.full((7,), 0.5))


def test_equal_bounds_reduce_tdw_to_static():
    for name in ("paper", "inverted"):
        assert_close(pw(name, 25, 0.4, 0.4), pw("static", 25, 0.4, 0.4))
    released = pw("released", 25, 0.4, 0.4, identity_weight=0.4)
    assert_close(released, pw("static", 25, 0.4, 0.4))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("bounds", [(0.7, 0.3), (1.0, 0.0), (0.9, 0.1), (0.55, 0.45)])
@pytest.mark.parametrize("num_steps", [1, 4, 10, 25, 50])
def test_weights_stay_within_bounds(name, bounds, num_steps):
    w_max, w_min = bounds
    middle = (w_max + w_min) / 2
    w = pw(name, num_steps, w_max, w_min, identity_weight=middle)
    assert w.shape == (num_steps,)
    assert (w >= w_min).all() and (w <= w_max).all()
    # prompt_weights clamps away float rounding; the schedule itself must already be in bounds
    raw = SCHEDULES[name](num_steps, w_max, w_min, APPENDIX, middle)
    assert (raw >= w_min - 1e-12).all() and (raw <= w_max + 1e-12).all()
    assert_close(identity_weights(w) + w, torch.ones(num_steps))


def test_paper_is_monotone_non_increasing_and_inverted_non_decreasing():
    assert (pw("paper", 25).diff() <= 0).all()
    assert (pw("inverted", 25).diff() >= 0).all()


def test_other_step_counts_keep_the_shape_in_normalised_time():
    w50 = pw("paper", 50, dtype=torch.float64)
    # boundaries 6 -> 12 and 22 -> 44, centre 10 -> 20
    assert w50[11].item() == 0.7 and w50[12].item() < 0.7
    assert w50[43].item() > 0.3 and w50[44].item() == 0.3
    assert w50[20].item() == pytest.approx(0.5, abs=1e-12)


def test_custom_shape():
    w = pw(
        "paper", 10, shape=TDWShape(prompt_phase_end=2.5, identity_phase_start=25.0, center=5.0, slope=0.8)
    )
    # T=10: prompt phase ends at 2.5 * 10/25 = 1 step, identity phase starts at 10 steps (none)
    assert w[0].item() == pytest.approx(0.7) and w[1].item() < 0.7 and w[-1].item() > 0.3


def test_registry_matches_config_literal():
    assert set(SCHEDULES) == set(typing.get_args(ScheduleName))


def test_errors_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"unknown TDW schedule 'cosine'.*'inverted', 'paper'"):
        pw("cosine")
    with pytest.raises(ValueError, match="w_min <= w_max"):
        pw("paper", w_max=0.3, w_min=0.7)
    with pytest.raises(ValueError, match="num_steps"):
        pw("paper", num_steps=0)
    with pytest.raises(ValueError, match="identity_weight"):
        pw("released", identity_weight=0.9)


def test_a_forgotten_parameter_fails_instead_of_defaulting():
    with pytest.raises(TypeError):
        prompt_weights("paper", 25)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        TDWShape(6.0, 22.0)  # type: ignore[call-arg]


def test_the_config_adapter_reads_every_tdw_field():
    tdw = TDWConfig(
        w_max=0.8, w_min=0.2, prompt_phase_end=4.0, identity_phase_start=20.0, center=8.0, slope=0.5
    )
    w_id, w_prompt = tdw_weights(tdw, 25)
    shape = TDWShape(4.0, 20.0, 8.0, 0.5)
    assert_close(w_prompt, pw("paper", 25, 0.8, 0.2, shape, dtype=torch.float64))
    assert_close(w_id + w_prompt, torch.ones(25, dtype=torch.float64))
    # the released preset reaches its identity-phase weight through the config, not a string test
    released = experiment_config("paper", "released_code").grpo.tdw
    assert tdw_weights(released, 25)[1][22:].tolist() == [0.5] * 3
    moved = override(released, {"released_identity_weight": 0.6})
    assert tdw_weights(moved, 25)[1][22:].tolist() == pytest.approx([0.6] * 3)


def test_the_released_preset_says_what_it_reproduces():
    # It reproduces the released weight *function*, keyed to the sampling step as Eq. 12 is: the identity
    # phase (steps 22-24 of 25) gets the release's 0.5.
    tdw = experiment_config("paper", "released_code").grpo.tdw
    w_prompt = tdw_weights(tdw, 25)[1]
    assert w_prompt[22:].tolist() == [0.5] * 3
    # The released run called that function with each trained transition's position in a random permutation
    # and trained positions 0-13 only (int(24 * 0.6)): its identity phase (positions >= 22) never occurred, so
    # its weights were unrelated to denoising time. The preset's documentation must say so.
    assert max(range(int(24 * 0.6))) < tdw.identity_phase_start
    for doc in (TDWConfig.__doc__, schedules.__doc__):
        assert "permutation" in doc and "0.5" in doc
