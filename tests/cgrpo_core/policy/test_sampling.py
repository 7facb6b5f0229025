"""ODE sampling, SDE rollouts and log-prob recomputation on the tiny policy."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from cgrpo_core.losses import gaussian_kl
from cgrpo_core.policy import (
    Condition,
    decode_latents,
    encode_condition,
    load_policy,
    log_prob,
    rollout,
    sample,
    sample_train_steps,
    step_distribution,
    to_uint8,
    velocity,
)
from cgrpo_core.policy.latents import pack_latents
from tests.cgrpo_core.policy.helpers import checkerboard, solid

G = 4  # test profile group size


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def cond(policy, settings):
    return encode_condition(policy, "a dog in the snow", checkerboard(), settings.resolution)


def _all_transitions(group):
    g, t = group.log_probs.shape
    samples = torch.arange(g).repeat_interleave(t)  # (G*T,)
    steps = torch.arange(t).repeat(g)  # (G*T,)
    return samples, steps


def test_rollout_shapes_and_start(policy, cond, settings):
    settings = settings.model_copy(update={"same_group_noise": False})  # the paper preset's draw
    group = rollout(policy, cond, G, settings, _gen(3))
    t, n, d = settings.num_steps, cond.num_tokens, 64
    assert group.latents.shape == (G, t + 1, n, d) and group.log_probs.shape == (G, t)
    assert group.sigmas.shape == (t + 1,) and group.sigmas[0] == 1 and group.sigmas[-1] == 0
    assert group.images.shape == (G, 32, 32, 3) and group.images.dtype == torch.uint8
    assert torch.equal(group.images, to_uint8(decode_latents(policy, group.clean, settings.resolution)))
    # The start is the generator's first draw, in the unpacked [G, C, H, W] shape, then packed.
    assert torch.equal(group.latents[:, 0], pack_latents(torch.randn(G, 16, 8, 8, generator=_gen(3))))
    assert torch.isfinite(group.log_probs).all()
    # Different noise per group member.
    assert not torch.allclose(group.final[0], group.final[1])


def test_rewards_see_the_clean_prediction_of_the_last_step(policy, cond, settings):
    # The released trainer (and DanceGRPO) decode x - sigma * v at the last step, not the noisy SDE sample.
    group = rollout(policy, cond, G, settings, _gen(13))
    sigma = group.sigmas[-2]  # the last step runs from sigma_{T-1} to 0
    x = group.latents[:, -2]  # (G, N, D): the state before it
    expected = x - sigma * velocity(policy, group.cond, x, sigma, settings.guidance)
    assert_close(group.clean, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(group.images, to_uint8(decode_latents(policy, expected, settings.resolution)))
    # the final SDE sample differs from it by that step's noise, std eta * sqrt(sigma_{T-1})
    noise_std = (group.final - group.clean).std().item()
    assert noise_std == pytest.approx(settings.eta * sigma.sqrt().item(), rel=0.2)
    assert not torch.equal(group.images, to_uint8(decode_latents(policy, group.final, settings.resolution)))


def test_group_noise_is_shared_only_when_the_sampler_says_so(policy, cond, settings):
    own_noise = settings.model_copy(update={"same_group_noise": False})
    own = rollout(policy, cond, G, own_noise, _gen(14), decode=False)
    assert not torch.equal(own.latents[0, 0], own.latents[1, 0])
    shared = rollout(
        policy, cond, G, own_noise.model_copy(update={"same_group_noise": True}), _gen(14), decode=False
    )
    assert all(torch.equal(shared.latents[0, 0], shared.latents[k, 0]) for k in range(G))
    assert torch.equal(shared.latents[0, 0], pack_latents(torch.randn(1, 16, 8, 8, generator=_gen(14)))[0])
    assert not torch.equal(shared.final[0], shared.final[1])  # the SDE steps still differ


def test_log_prob_recomputes_the_rollout_and_moves_after_a_step(policy, cond, settings):
    group = rollout(policy, cond, G, settings, _gen(1), decode=False)
    samples, steps = _all_transitions(group)
    stored = group.log_probs[samples, steps]  # (G*T,)
    recomputed = log_prob(policy, group, samples, steps)
    assert_close(recomputed, stored, rtol=1e-5, atol=1e-5)  # the GRPO ratio is 1 at unchanged parameters

    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-2)
    (-recomputed.mean()).backward()
    optimizer.step()
    after = log_prob(policy, group, samples, steps)
    assert (after - stored).abs().min() > 1e-6  # every transition's log-prob changed


def test_batched_steps_equal_one_step_at_a_time(policy, cond, settings):
    group = rollout(policy, cond, G, settings, _gen(2), decode=False)
    samples, steps = torch.tensor([0, 3, 1, 2]), torch.tensor([0, 3, 2, 1])
    batched = log_prob(policy, group, samples, steps)
    singles = torch.cat([log_prob(policy, group, int(samples[i]), int(steps[i])) for i in range(4)])
    assert_close(batched, singles, rtol=1e-5, atol=1e-5)


def test_log_prob_gradient_reaches_only_the_lora(policy, cond, settings):
    group = rollout(policy, cond, G, settings, _gen(4), decode=False)
    samples, steps = torch.arange(G), torch.full((G,), 1)
    lp = log_prob(policy, group, samples, steps)
    lp.sum().backward()
    grads = [p.grad for p in policy.trainable_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    frozen = [
        p
        for m in (policy.transformer, policy.vae, policy.text_encoder)
        for p in m.parameters()
        if not p.requires_grad
    ]
    assert all(p.grad is None for p in frozen)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_config, settings):
    grads = []
    for checkpointing in (False, True):
        policy = load_policy(tiny_config.model_copy(update={"gradient_checkpointing": checkpointing}))
        cond = encode_condition(policy, "a dog", checkerboard(), settings.resolution)
        group = rollout(policy, cond, 2, settings, _gen(5), decode=False)
        steps = torch.tensor([0, 2])
        lp = log_prob(policy, group, torch.tensor([0, 1]), steps)
        lp.sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in policy.trainable_parameters()]))
    assert_close(grads[0], grads[1])


def test_eta_zero_rollout_equals_ode_sample(policy, cond, settings):
    noise = pack_latents(torch.randn(G, 16, 8, 8, generator=_gen(6)))
    ode = sample(policy, cond, settings, num_samples=G, noise=noise)
    group = rollout(policy, cond, G, settings.model_copy(update={"eta": 0.0}), noise=noise, decode=False)
    assert_close(group.final, ode, rtol=0, atol=1e-6)
    assert torch.equal(group.log_probs, torch.zeros(G, settings.num_steps))


def test_same_seed_same_sample_and_rollout(policy, cond, settings):
    assert torch.equal(
        sample(policy, cond, settings, 2, generator=_gen(7)),
        sample(policy, cond, settings, 2, generator=_gen(7)),
    )
    assert not torch.equal(
        sample(policy, cond, settings, 2, generator=_gen(7)),
        sample(policy, cond, settings, 2, generator=_gen(8)),
    )
    a, b = rollout(policy, cond, G, settings, _gen(9)), rollout(policy, cond, G, settings, _gen(9))
    assert (
        torch.equal(a.latents, b.latents)
        and torch.equal(a.log_probs, b.log_probs)
        and torch.equal(a.images, b.images)
    )


def test_the_reference_conditions_the_sample(policy, settings):
    noise = pack_latents(torch.randn(2, 16, 8, 8, generator=_gen(10)))
    dog_a = encode_condition(policy, "a dog", solid((250, 20, 20)), settings.resolution)
    dog_b = encode_condition(policy, "a dog", checkerboard(), settings.resolution)
    out_a = sample(policy, dog_a, settings, 2, noise=noise)
    out_b = sample(policy, dog_b, settings, 2, noise=noise)
    assert (out_a - out_b).abs().mean() > 1e-3
    assert torch.equal(out_a, sample(policy, dog_a, settings, 2, noise=noise))


def test_batched_conditions_sample_like_separate_ones(policy, settings):
    a = encode_condition(policy, "a dog", solid((0, 90, 0)), settings.resolution)
    b = encode_condition(policy, "a red backpack", checkerboard(), settings.resolution)
    noise = pack_latents(torch.randn(2, 16, 8, 8, generator=_gen(11)))
    together = sample(policy, Condition.cat([a, b]), settings, 2, noise=noise)
    assert_close(together[0:1], sample(policy, a, settings, 1, noise=noise[0:1]), rtol=1e-5, atol=1e-5)
    assert_close(together[1:2], sample(policy, b, settings, 1, noise=noise[1:2]), rtol=1e-5, atol=1e-5)
    chunked = sample(policy, Condition.cat([a, b]), settings, 2, noise=noise, batch_size=1)
    assert_close(chunked, together, rtol=1e-5, atol=1e-5)


def test_chunked_rollout_matches_one_batch(policy, cond, settings):
    whole = rollout(policy, cond, G, settings, _gen(12), decode=False)
    chunked = rollout(policy, cond, G, settings, _gen(12), decode=False, batch_size=3)
    assert_close(chunked.latents, whole.latents, rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_rejected(policy, cond, settings):
    with pytest.raises(ValueError, match="noise must have shape"):
        sample(policy, cond, settings, 2, noise=torch.zeros(2, 15, 64))
    group = rollout(policy, cond, 2, settings, _gen(), decode=False)
    with pytest.raises(ValueError, match="step indices"):
        log_prob(policy, group, 0, settings.num_steps)
    with pytest.raises(ValueError, match="sample indices"):
        log_prob(policy, group, 2, 0)
    with pytest.raises(ValueError, match="batch 1"):
        rollout(policy, Condition.cat([cond, cond]), G, settings, _gen())
    with pytest.raises(ValueError, match="global RNG"):
        sample(policy, cond, settings, 2)
    with pytest.raises(ValueError, match="global RNG"):
        rollout(policy, cond, G, settings, noise=torch.zeros(G, 16, 64))


def test_log_prob_uses_the_rollout_settings_and_gives_the_step_gaussian(policy, cond, settings):
    # A recomputation cannot use other sampler settings than the rollout's: there is no argument for them.
    group = rollout(policy, cond, 2, settings.model_copy(update={"eta": 0.9}), _gen(15), decode=False)
    steps, samples = torch.tensor([1, 2]), torch.tensor([0, 1])
    step = step_distribution(policy, group, samples, steps)
    assert_close(step.log_prob, group.log_probs[samples, steps], rtol=1e-5, atol=1e-5)
    sigma, sigma_next = group.sigmas[steps], group.sigmas[steps + 1]
    assert_close(step.std.flatten(), 0.9 * (sigma - sigma_next).sqrt())
    # the KL term reads the step's own mean: zero against itself
    assert torch.equal(gaussian_kl(step.mean, step.mean, step.std.flatten()), torch.zeros(2))


def test_sample_train_steps():
    steps = sample_train_steps(10, 0.6, False, _gen(0))
    assert len(steps) == 6 and len(set(steps.tolist())) == 6 and steps.min() >= 0 and steps.max() < 10
    assert torch.equal(steps, sample_train_steps(10, 0.6, False, _gen(0)))
    released = sample_train_steps(25, 0.6, True, _gen(1))  # int(24 * 0.6) = 14 of steps 0-23
    assert len(set(released.tolist())) == 14 and released.max() <= 23
    assert sorted(sample_train_steps(4, 1.0, False, _gen(2)).tolist()) == [0, 1, 2, 3]
    assert sorted(sample_train_steps(4, 1.0, True, _gen(2)).tolist()) == [0, 1, 2]
    assert len(sample_train_steps(3, 0.1, False, _gen(3))) == 1
    with pytest.raises(ValueError, match="fraction"):
        sample_train_steps(4, 0.0, False, _gen())
    with pytest.raises(ValueError, match="no step to train"):
        sample_train_steps(1, 1.0, True, _gen())
