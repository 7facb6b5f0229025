"""RPO on the tiny policy: the pairing rule against an independent computation, the preference file (built
once, the same from several ranks), the reference model is the LoRA-disabled policy, and the update, its
determinism and resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from cgrpo_core.config import experiment_config
from cgrpo_core.policy import decode_latents, encode_condition, load_policy, sample, to_pil
from cgrpo_core.policy.lora import lora_disabled
from cgrpo_core.policy.sampling import initial_noise
from cgrpo_core.schema import override
from cgrpo_core.training import rpo as rpo_module
from cgrpo_core.training.data import derive_seed
from cgrpo_core.training.distributed import Dist
from cgrpo_core.training.loop import train, trainable_state
from cgrpo_core.training.rpo import (
    RPOTrainer,
    build_preferences,
    harmonic_reward,
    load_preferences,
    pair_errors,
    pick_pair,
    rpo_steps,
)
from tests.cgrpo_core.training.test_sft import memoize_encoders, one_thread, write_pairs  # noqa: F401

RPO = experiment_config("test").rpo
SEED = 3


def _rpo(**changes):
    return override(
        RPO, {"batch_size": 2, "candidates": 4, "max_steps": None, "learning_rate": 1e-3, **changes}
    )


@pytest.fixture(autouse=True)
def _fast(monkeypatch, one_thread):  # noqa: F811
    memoize_encoders(monkeypatch, rpo_module)


def _brightness(images) -> np.ndarray:
    return np.array([np.asarray(im, dtype=np.float64).mean() / 255 for im in images])


def _redness(images) -> np.ndarray:
    return np.array([np.asarray(im, dtype=np.float64)[..., 0].mean() / 255 for im in images])


def score(pair, images):
    """A known scorer: identity = mean brightness, prompt = mean red, of each candidate."""
    return torch.tensor(_brightness(images)), torch.tensor(_redness(images))


@pytest.fixture
def pairs(tmp_path):
    return write_pairs(tmp_path / "images", 3)


@pytest.fixture
def preferences(tiny_config, settings, pairs, tmp_path) -> Path:
    return build_preferences(
        load_policy(tiny_config), pairs, score, _rpo(), settings, SEED, tmp_path / "p.pt"
    )


def _rpo_harmonic(r_id: np.ndarray, r_prompt: np.ndarray, lam: float) -> np.ndarray:
    """RPO's lambda-Harmonic reward of min-max normalised rewards, written out independently."""
    a = (r_id - r_id.min()) / (r_id.max() - r_id.min())
    b = (r_prompt - r_prompt.min()) / (r_prompt.max() - r_prompt.min())
    with np.errstate(divide="ignore"):
        return 1.0 / (lam / a + (1 - lam) / b)  # a zero gives 1 / inf = 0


def test_the_winner_is_the_candidate_the_rule_ranks_highest(policy, settings, pairs, preferences):
    data = torch.load(preferences, weights_only=True)
    assert data["winner"].shape == (3, 16, 64) and data["r_id"].shape == (3, 4)
    assert data["pair_index"].tolist() == [0, 1, 2] and data["settings"]["reward_lambda"] == 0.3
    for row, pair in enumerate(pairs):
        # the candidates again, independently: text-only condition, noise per (seed, pair, candidate)
        cond = encode_condition(policy, pair.prompt, [], settings.resolution)
        noise = torch.cat(
            [
                initial_noise(
                    policy,
                    cond,
                    1,
                    torch.Generator().manual_seed(derive_seed(SEED, "candidate", pair.index, k)),
                )
                for k in range(4)
            ]
        )
        latents = sample(policy, cond, settings, 4, noise=noise)  # (4, N, D)
        images = to_pil(decode_latents(policy, latents, settings.resolution))
        r_id, r_prompt = _brightness(images), _redness(images)
        torch.testing.assert_close(data["r_id"][row].double(), torch.tensor(r_id), rtol=0, atol=1e-6)
        harmonic = _rpo_harmonic(r_id, r_prompt, 0.3)
        winner, loser = int(harmonic.argmax()), int(harmonic.argmin())
        if harmonic.tolist().count(harmonic.min()) > 1:  # tied at 0: the higher arithmetic mean is kept
            zeros = np.flatnonzero(harmonic == harmonic.min())
            a = (r_id - r_id.min()) / np.ptp(r_id)
            b = (r_prompt - r_prompt.min()) / np.ptp(r_prompt)
            loser = int(zeros[np.argmin((0.3 * a + 0.7 * b)[zeros])])
        assert (data["winner_index"][row], data["loser_index"][row]) == (winner, loser)
        torch.testing.assert_close(data["winner"][row], latents[winner], rtol=0, atol=1e-6)
        torch.testing.assert_close(data["loser"][row], latents[loser], rtol=0, atol=1e-6)


def test_pairing_rule_edge_cases():
    a, b = torch.tensor([0.2, 0.9, 0.5]), torch.tensor([0.7, 0.4, 0.8])
    torch.testing.assert_close(harmonic_reward(a, b, 0.3), 1 / (0.3 / a + 0.7 / b))
    # two candidates in conflict: both harmonic means are 0; the arithmetic mean (lambda 0.3) favours prompt
    assert pick_pair(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.3) == (1, 0)
    # a reward equal for all tells none apart: the other one decides
    assert pick_pair(torch.ones(3), torch.tensor([0.2, 0.9, 0.5]), 0.3) == (1, 0)
    assert pick_pair(torch.ones(3), torch.ones(3), 0.3) == (0, 0)  # no preference at all
    assert pick_pair(torch.tensor([3.0, 1.0, 2.0]), torch.tensor([5.0, 9.0, 7.0]), 1.0) == (0, 1)


def test_an_existing_file_is_not_rebuilt(tiny_config, settings, pairs, preferences):
    stamp = preferences.stat().st_mtime_ns

    def fail(pair, images):
        raise AssertionError("the preferences were scored again")

    again = build_preferences(load_policy(tiny_config), pairs, fail, _rpo(), settings, SEED, preferences)
    assert again == preferences and preferences.stat().st_mtime_ns == stamp


def test_ranks_build_the_same_file_as_one_process(tiny_config, settings, pairs, preferences, tmp_path):
    class NoBarrier(Dist):  # the ranks run one after the other here: nothing to wait for
        def barrier(self) -> None:
            pass

    path = tmp_path / "ranks.pt"
    for rank in (1, 0):  # rank 0 merges, so it goes last
        build_preferences(
            load_policy(tiny_config), pairs, score, _rpo(), settings, SEED, path, NoBarrier(rank, 2)
        )
    one, two = torch.load(preferences, weights_only=True), torch.load(path, weights_only=True)
    assert one.keys() == two.keys() and one["settings"] == two["settings"]
    assert all(torch.equal(one[k], two[k]) for k in one if k != "settings")
    assert sorted(p.name for p in tmp_path.iterdir() if "ranks" in p.name) == ["ranks.pt"]


def test_reference_errors_come_from_the_lora_disabled_model(
    tiny_config, policy, settings, pairs, preferences
):
    data = load_preferences(preferences, pairs, settings)
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(0.3 * torch.randn_like(p))

    def errors(model):
        generator = torch.Generator().manual_seed(11)
        return pair_errors(model, pairs[0], data["winner"][0], data["loser"][0], settings, generator, True)

    err, ref_err, sim_err = errors(policy)
    base_err, base_ref_err, _ = errors(load_policy(tiny_config))  # LoRA B = 0: the base model
    assert err.requires_grad and sim_err.requires_grad and not ref_err.requires_grad
    assert (err - ref_err).abs().min() > 1e-4  # the perturbed LoRA changes the policy's errors ...
    torch.testing.assert_close(ref_err, base_err.detach(), rtol=0, atol=1e-6)  # ... not the reference's
    torch.testing.assert_close(base_ref_err, base_err.detach(), rtol=0, atol=1e-6)
    assert all(p.requires_grad for p in policy.trainable_parameters())  # switched back on, still trained
    with lora_disabled(policy.transformer):
        assert not any(p.requires_grad for p in policy.trainable_parameters())
    assert sum(p.requires_grad for p in policy.transformer.parameters()) == len(policy.trainable_parameters())


def test_two_steps_change_every_lora_parameter(policy, settings, pairs, preferences):
    trainer = RPOTrainer(policy, pairs, preferences, _rpo(), settings, SEED)
    before = trainable_state(policy)
    history = [trainer.step(0), trainer.step(1)]
    after = trainable_state(policy)
    expected = {"loss", "preference_loss", "similarity_loss", "margin", "accuracy", "lr", "grad_norm"}
    assert set(history[0]) == expected | {"seconds/step"}
    assert all(np.isfinite(list(m.values())).all() for m in history)
    # at the first step the policy is the reference: a zero margin, log 2 of preference loss
    assert history[0]["margin"] == pytest.approx(0, abs=1e-6)
    assert history[0]["preference_loss"] == pytest.approx(np.log(2))
    assert history[1]["margin"] != 0 and history[0]["similarity_loss"] > 0
    unchanged = [name for name in before if torch.equal(before[name], after[name])]
    assert not unchanged, f"{len(unchanged)} LoRA parameters did not move, e.g. {unchanged[:3]}"


def test_the_same_seed_gives_the_same_lora(tiny_config, settings, pairs, preferences):
    states = []
    for _ in range(2):
        policy = load_policy(tiny_config)
        trainer = RPOTrainer(policy, pairs, preferences, _rpo(), settings, SEED)
        trainer.step(0), trainer.step(1)
        states.append(trainable_state(policy))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_resume_continues_bit_identically(tiny_config, settings, pairs, preferences, tmp_path):
    def run(folder: Path, max_steps: int) -> dict[str, torch.Tensor]:
        policy = load_policy(tiny_config)
        train(RPOTrainer(policy, pairs, preferences, _rpo(), settings, SEED), max_steps, folder, 1)
        return trainable_state(policy)

    whole = run(tmp_path / "whole", 3)
    run(tmp_path / "killed", 2)
    resumed = run(tmp_path / "killed", 3)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_steps_and_bad_inputs(policy, settings, pairs, preferences):
    assert rpo_steps(10, _rpo(batch_size=4, epochs=2, max_steps=None)) == 6
    assert rpo_steps(10, _rpo(batch_size=4, epochs=2, max_steps=5)) == 5
    with pytest.raises(ValueError, match="empty.*prepare-syncd"):
        RPOTrainer(policy, [], preferences, _rpo(), settings, SEED)
    no_target = [*pairs[:2], dataclasses.replace(pairs[2], target=None)]
    with pytest.raises(ValueError, match="have none, e.g. pair 2 "):
        RPOTrainer(policy, no_target, preferences, _rpo(), settings, SEED)
    RPOTrainer(policy, no_target, preferences, _rpo(sim_weight=0.0), settings, SEED)  # no similarity term
    with pytest.raises(ValueError, match="another training list"):
        RPOTrainer(policy, pairs[:2], preferences, _rpo(), settings, SEED)
