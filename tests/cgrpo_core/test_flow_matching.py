"""Sigma schedule, ODE and SDE steps; log-probs checked against torch.distributions.Normal."""

import math

import pytest
import torch
from torch.testing import assert_close

from cgrpo_core.flow_matching import (
    add_noise,
    flux_shift,
    ode_step,
    sde_step,
    shifted_sigmas,
    velocity_target,
)


def independent_sde_mean(x, v, sigma, sigma_next, eta):
    """The SDE mean by another route: x0 = x - sigma v, eps = (x - (1 - sigma) x0) / sigma,
    score = -eps / sigma, mean = Euler step - 0.5 eta^2 score dsigma."""
    x0 = x - sigma * v
    eps = (x - (1 - sigma) * x0) / sigma
    dsigma = sigma_next - sigma
    return x + dsigma * v + 0.5 * eta**2 * dsigma * eps / sigma


def sde(*args, **kwargs):
    """``(sample, log_prob)`` of one sde_step."""
    step = sde_step(*args, **kwargs)
    return step.sample, step.log_prob


def test_shifted_sigmas():
    assert_close(shifted_sigmas(4, shift=1.0), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    s = shifted_sigmas(2, shift=3.0, dtype=torch.float64)
    # t = 0.5 -> 3 * 0.5 / (1 + 2 * 0.5) = 0.75
    assert_close(s, torch.tensor([1.0, 0.75, 0.0], dtype=torch.float64))
    s25 = shifted_sigmas(25, 3.0)
    assert s25.shape == (26,) and s25[0] == 1.0 and s25[-1] == 0.0 and (s25.diff() < 0).all()
    with pytest.raises(ValueError, match="num_steps"):
        shifted_sigmas(0, 3.0)
    with pytest.raises(ValueError, match="shift"):
        shifted_sigmas(5, shift=-1.0)


def test_flux_shift_endpoints():
    assert flux_shift(256) == pytest.approx(math.exp(0.5))
    assert flux_shift(4096) == pytest.approx(math.exp(1.15))


def test_forward_process_and_target():
    x0, noise = torch.full((1, 2), 2.0), torch.full((1, 2), -1.0)
    assert_close(add_noise(x0, noise, 0.25), torch.full((1, 2), 0.75 * 2.0 - 0.25))
    assert_close(velocity_target(x0, noise), torch.full((1, 2), -3.0))
    # An exact velocity makes one Euler step from sigma to 0 land on x0.
    z = add_noise(x0, noise, 0.6)
    assert_close(ode_step(z, velocity_target(x0, noise), 0.6, 0.0), x0)


def test_ode_step_hand_value():
    # 1 + (0.25 - 0.5) * 2 = 0.5
    assert_close(ode_step(torch.ones(1, 3), torch.full((1, 3), 2.0), 0.5, 0.25), torch.full((1, 3), 0.5))


@pytest.mark.parametrize("sigma,sigma_next", [(1.0, 0.9), (0.6, 0.3), (0.2, 0.0)])
def test_log_prob_equals_normal_log_density(sigma, sigma_next):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    v = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    nxt = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    eta = 0.4
    out, log_prob = sde(x, v, sigma, sigma_next, eta, next_latents=nxt)
    mean = independent_sde_mean(x, v, sigma, sigma_next, eta)
    std = eta * math.sqrt(sigma - sigma_next)
    expected = torch.distributions.Normal(mean, std).log_prob(nxt).mean(dim=(1, 2))
    assert torch.equal(out, nxt)
    assert log_prob.shape == (3,)
    assert_close(log_prob, expected)


def test_sampling_is_mean_plus_std_noise_and_seeded():
    x, v = torch.randn(2, 8), torch.randn(2, 8)
    out1, lp1 = sde(x, v, 0.8, 0.6, 0.4, generator=torch.Generator().manual_seed(7))
    out2, lp2 = sde(x, v, 0.8, 0.6, 0.4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out1, out2) and torch.equal(lp1, lp2)
    noise = torch.randn(2, 8, generator=torch.Generator().manual_seed(7))
    expected = independent_sde_mean(x, v, 0.8, 0.6, 0.4) + 0.4 * math.sqrt(0.2) * noise
    assert_close(out1, expected)
    # Its own log-prob is recovered when the sample is passed back in.
    _, lp_again = sde(x, v, 0.8, 0.6, 0.4, next_latents=out1)
    assert_close(lp_again, lp1)


def test_sample_statistics():
    x = torch.zeros(20000, 1)
    v = torch.ones(20000, 1)
    out, _ = sde(x, v, 0.5, 0.3, 1.0, generator=torch.Generator().manual_seed(3))
    mean = independent_sde_mean(x[:1], v[:1], 0.5, 0.3, 1.0)
    assert out.mean().item() == pytest.approx(mean.item(), abs=0.01)
    assert out.std().item() == pytest.approx(math.sqrt(0.2), rel=0.02)


def test_eta_to_zero_recovers_the_ode_step():
    x, v = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    ode = ode_step(x, v, 0.7, 0.5)
    small, _ = sde(x, v, 0.7, 0.5, 1e-6, generator=torch.Generator().manual_seed(0))
    assert_close(small, ode, atol=1e-5, rtol=0)
    exact, log_prob = sde(x, v, 0.7, 0.5, 0.0)
    assert_close(exact, ode)
    assert torch.equal(log_prob, torch.zeros(4, dtype=torch.float64))


def test_per_sample_sigmas_match_scalar_calls():
    x, v, nxt = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    sig, sig_next = torch.tensor([0.9, 0.5, 0.2]), torch.tensor([0.8, 0.4, 0.0])
    _, batched = sde(x, v, sig, sig_next, 0.4, next_latents=nxt)
    for i in range(3):
        _, single = sde(
            x[i : i + 1], v[i : i + 1], float(sig[i]), float(sig_next[i]), 0.4, next_latents=nxt[i : i + 1]
        )
        assert_close(batched[i : i + 1], single)
    assert_close(ode_step(x, v, sig, sig_next)[1], ode_step(x[1:2], v[1:2], 0.5, 0.4)[0])


def test_gradient_flows_through_velocity_only():
    x, nxt = torch.randn(2, 4), torch.randn(2, 4, requires_grad=True)
    v = torch.randn(2, 4, requires_grad=True)
    _, log_prob = sde(x, v, 0.6, 0.4, 0.4, next_latents=nxt)
    log_prob.sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    assert nxt.grad is None


def test_bf16_inputs_give_float32_log_probs():
    x, v = torch.randn(2, 4).bfloat16(), torch.randn(2, 4).bfloat16()
    out, log_prob = sde(x, v, 0.6, 0.4, 0.4, generator=torch.Generator().manual_seed(0))
    assert log_prob.dtype == torch.float32 and out.dtype == torch.float32


def test_bad_input():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="sigma_next < sigma"):
        sde_step(x, x, 0.5, 0.5, 0.4)
    with pytest.raises(ValueError, match="must match"):
        sde_step(x, torch.zeros(2, 4), 0.5, 0.4, 0.4)
    with pytest.raises(ValueError, match="eta"):
        sde_step(x, x, 0.5, 0.4, -1.0)
    with pytest.raises(ValueError, match=r"\[batch\] tensor with batch=2"):
        sde_step(x, x, torch.tensor([0.5, 0.5, 0.5]), 0.4, 0.4)
    with pytest.raises(ValueError, match="next_latents"):
        sde_step(x, x, 0.5, 0.4, 0.4, next_latents=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="finite sigmas"):
        sde_step(x, x, float("nan"), 0.4, 0.4)
    with pytest.raises(ValueError, match="0 <= sigma_next < sigma <= 1"):
        sde_step(x, x, 1.5, 0.4, 0.4)
    with pytest.raises(ValueError, match="0 <= sigma_next < sigma <= 1"):
        sde_step(x, x, 0.5, torch.tensor([0.4, -0.1]), 0.4)


def test_the_step_returns_its_gaussian_and_the_clean_prediction():
    g = torch.Generator().manual_seed(1)
    x, v = (
        torch.randn(3, 6, generator=g, dtype=torch.float64),
        torch.randn(3, 6, generator=g, dtype=torch.float64),
    )
    step = sde_step(x, v, 0.6, 0.3, 0.7, generator=g)
    assert_close(step.mean, independent_sde_mean(x, v, 0.6, 0.3, 0.7))
    assert step.std.item() == pytest.approx(0.7 * math.sqrt(0.3))
    assert_close(step.x0_hat, x - 0.6 * v)  # the clean sample the velocity predicts
    # At the last step (sigma_next = 0) the ODE mean is that prediction, and the SDE sample is not.
    last = sde_step(x, v, 0.2, 0.0, 0.7, generator=g)
    assert_close(ode_step(x, v, 0.2, 0.0), last.x0_hat)
    assert (last.sample - last.x0_hat).std().item() > 0.1


def test_shifted_sigmas_needs_its_shift():
    with pytest.raises(TypeError):
        shifted_sigmas(25)  # type: ignore[call-arg]
