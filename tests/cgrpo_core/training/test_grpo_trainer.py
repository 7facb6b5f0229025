"""The GRPO trainer through the shared loop: resume is bit-identical, bad rewards stop the run with the
step and the cause, and 2-process data parallelism trains the LoRA one process trains."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from cgrpo_core.config import experiment_config
from cgrpo_core.policy import load_policy
from cgrpo_core.schema import override
from cgrpo_core.training.data import TrainPair
from cgrpo_core.training.distributed import SINGLE_PROCESS, Dist
from cgrpo_core.training.grpo_trainer import GRPOTrainer
from cgrpo_core.training.loop import TrainingError, latest_checkpoint, load_checkpoint, train, trainable_state
from tests.cgrpo_core.policy.helpers import checkerboard, solid

GRPO = override(
    experiment_config("test").grpo, {"learning_rate": 1e-2, "clip_range": 0.2, "prompts_per_step": 2}
)
NAMES = ("dino_seg", "hpsv3")


def _brightness(pair, images):
    r = torch.tensor([sum(im.convert("L").getdata()) / (255 * im.width * im.height) for im in images])
    return r, 1 - r


def _pairs(folder):
    folder.mkdir(exist_ok=True)
    solid((200, 40, 40)).save(folder / "a.png")
    checkerboard().save(folder / "b.png")
    solid((20, 90, 200)).save(folder / "c.png")
    prompts = ["a dog in the snow", "a red cup", "a blue vase on a table"]
    return [
        TrainPair(k, folder / f"{n}.png", None, p, None)
        for k, (n, p) in enumerate(zip("abc", prompts, strict=True))
    ]


def _trainer(config, settings, pairs, score=_brightness, dist=SINGLE_PROCESS, grpo=GRPO):
    return GRPOTrainer(load_policy(config), pairs, score, NAMES, grpo, settings, 7, dist)


def test_a_resumed_run_ends_at_the_uninterrupted_runs_lora(tiny_config, settings, tmp_path):
    pairs = _pairs(tmp_path / "img")
    full = _trainer(tiny_config, settings, pairs)
    history = train(full, 3, tmp_path / "full", checkpoint_every=1)
    assert len(history) == 3 and history[0]["ratio_first_update"] == 1.0
    assert {"reward/dino_seg_mean", "advantage/combined_std", "conflict/conflict", "seconds/sampling"} <= set(
        history[0]
    )
    first = _trainer(tiny_config, settings, pairs)
    train(first, 2, tmp_path / "resumed", checkpoint_every=1)  # "killed" after step 2's checkpoint
    second = _trainer(tiny_config, settings, pairs)  # a new process: fresh policy and optimiser
    seen = []
    resumed = train(second, 3, tmp_path / "resumed", checkpoint_every=1, on_start=seen.append)
    assert seen == [2] and len(resumed) == 3
    a, b = trainable_state(full.policy), trainable_state(second.policy)
    assert all(torch.equal(a[k], b[k]) for k in a)

    def timeless(h):
        return [{k: v for k, v in m.items() if not k.startswith(("seconds/", "memory/"))} for m in h]

    assert timeless(resumed) == timeless(history)  # the same metrics, step for step
    initial = trainable_state(load_policy(tiny_config))  # the LoRA's seeded init
    assert not all(torch.equal(a[k], initial[k]) for k in a)


def test_a_nan_reward_stops_the_run_naming_the_step_and_keeps_the_last_checkpoint(
    tiny_config, settings, tmp_path
):
    pairs = _pairs(tmp_path / "img")
    calls = {"n": 0}

    def breaks_at_step_2(pair, images):
        calls["n"] += 1
        r, p = _brightness(pair, images)
        if calls["n"] > 2:  # two pairs per step: step 2's first group
            r[1] = float("nan")
        return r, p

    trainer = _trainer(tiny_config, settings, pairs, breaks_at_step_2)
    with pytest.raises(TrainingError, match=r"step 2: the identity reward is not finite"):
        train(trainer, 3, tmp_path / "run", checkpoint_every=1)
    found = latest_checkpoint(tmp_path / "run")
    assert found is not None and found.name == "step-000001"
    fresh = _trainer(tiny_config, settings, pairs)
    assert load_checkpoint(found, fresh)[0] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, world, port, config, settings, pairs, out):
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        per_rank = override(GRPO, {"prompts_per_step": GRPO.prompts_per_step // world})  # same global batch
        trainer = _trainer(config, settings, pairs, dist=Dist(rank, world), grpo=per_rank)
        history = train(trainer, 2, out / f"rank{rank}", checkpoint_every=2, is_writer=rank == 0)
        if rank == 0:
            torch.save(trainable_state(trainer.policy), out / "lora.pt")
            (out / "history.json").write_text(json.dumps(history))
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_train_the_lora_one_process_trains(tiny_config, settings, tmp_path):
    pairs = _pairs(tmp_path / "img")
    single = _trainer(tiny_config, settings, pairs)
    one = train(single, 2, tmp_path / "one", checkpoint_every=2)
    mp.spawn(_rank, args=(2, _free_port(), tiny_config, settings, pairs, tmp_path), nprocs=2, join=True)
    two = json.loads((tmp_path / "history.json").read_text())
    a, b = trainable_state(single.policy), torch.load(tmp_path / "lora.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-5) for k in a)
    assert max((a[k] - b[k]).abs().max() for k in a) < 1e-6
    initial = trainable_state(load_policy(tiny_config))
    assert not all(torch.equal(a[k], initial[k]) for k in a)
    for key in ("reward/dino_seg_mean", "reward/hpsv3_std", "conflict/conflict", "loss"):  # gathered metrics
        assert two[1][key] == pytest.approx(one[1][key], rel=1e-4, abs=1e-6), key


def test_a_non_finite_loss_stops_the_run_naming_the_step(tiny_config, settings, tmp_path, monkeypatch):
    import cgrpo_core.training.grpo as grpo_module

    real, calls = grpo_module.grpo_loss, {"n": 0}

    def nan_from_step_2(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] > 2 * GRPO.group_size:  # every sample of step 1 is fine
            return type(out)(out.loss * float("nan"), *list(vars(out).values())[1:])
        return out

    monkeypatch.setattr(grpo_module, "grpo_loss", nan_from_step_2)
    trainer = _trainer(tiny_config, settings, _pairs(tmp_path / "img"))
    with pytest.raises(TrainingError, match=r"step 2: the GRPO loss is not finite"):
        train(trainer, 3, tmp_path / "run", checkpoint_every=1, on_step=lambda s, m: None)
    last = latest_checkpoint(tmp_path / "run")
    assert last.name == "step-000001"
    assert all(bool(torch.isfinite(v).all()) for v in torch.load(last / "lora.pt").values())
