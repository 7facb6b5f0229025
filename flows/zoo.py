"""Flow ``toy-zoo``: every tiny model of the toy profile, trained in-project on the toy world.

    python -m flows.zoo                  # the toy profile's zoo (about 15 minutes on 2 cores, once)
    python -m flows.zoo --profile test   # the tests' zoo on the tests' small world (seconds)

Toy world -> reward zoo (segmenter, DINOv2, DINO v1, CLIP, aesthetic head, HPSv3) -> policy zoo (VAE,
base policy) -> the base policy's check under the zoo's DINO-Seg and HPSv3 (plus a sample grid) -> MLflow
(experiment ``toy-zoo``). Each result is addressed by content: a second run reuses all of it in seconds.
The last line printed is the check's folder; the zoo's folders are printed before it.
"""

from __future__ import annotations

import argparse

from prefect import flow

from cgrpo_core.config import ExperimentConfig, experiment_config
from flows.cli import add_experiment_arguments, experiment_from_args
from tasks.data import make_toy_world
from tasks.zoo import build_policy_zoo, build_reward_zoo, check_zoo_policy, log_toy_zoo

PROFILES = ("toy", "test")  # the paper profile loads released weights and has no zoo


@flow(name="toy-zoo", log_prints=True)
def toy_zoo(config: ExperimentConfig | None = None) -> dict[str, str]:
    """Build (or reuse) the toy zoo of ``config`` (default: the toy profile); its folders and MLflow run."""
    config = config or experiment_config("toy")
    if config.weights != "toy_zoo":
        raise ValueError(
            f"the {config.profile} profile reads configured weights: it has no toy zoo (profiles toy, test)"
        )
    world = make_toy_world(config.toy.world)
    reward_zoo = build_reward_zoo(config.toy.zoo.rewards, world)
    policy_zoo = build_policy_zoo(config.toy.zoo.policy, world)
    checks = check_zoo_policy(config.toy.zoo.check, config.sampler, policy_zoo, reward_zoo, world)
    run_id = log_toy_zoo(config.toy.zoo, config.profile, world, policy_zoo, reward_zoo, checks)
    print(f"toy zoo: policy {policy_zoo}, rewards {reward_zoo}, checks {checks}; MLflow run {run_id}")
    return {
        "toy_world": world,
        "policy_zoo": policy_zoo,
        "reward_zoo": reward_zoo,
        "checks": checks,
        "run_id": run_id,
    }


def main(argv: list[str] | None = None) -> dict[str, str]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_experiment_arguments(parser, PROFILES)
    out = toy_zoo(experiment_from_args(parser.parse_args(argv)))
    print(out["checks"])
    return out


if __name__ == "__main__":
    main()
