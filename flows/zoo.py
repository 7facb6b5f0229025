"""Flow ``toy-zoo``: every tiny model of the toy profile, trained in-project on the toy world.

    python -m flows.zoo                  # the toy profile's zoo (about 15 minutes on 2 cores, once)
    python -m flows.zoo --profile test   # the tests' zoo on the tests' small world (seconds)

Toy world -> reward zoo (segmenter, DINOv2, DINO v1, CLIP, aesthetic head, HPSv3) -> policy zoo (VAE,
base policy) -> the base policy's check under the zoo's DINO-Seg and HPSv3 (plus a sample grid) -> MLflow
(experiment ``toy-zoo``). Each result is addressed by content: a second run reuses all of it in seconds.
"""

from __future__ import annotations

import argparse

from prefect import flow

from cgrpo_core.data.config import data_config
from cgrpo_core.zoo.config import ZooConfig, zoo_config
from tasks.data import make_toy_world
from tasks.zoo import build_policy_zoo, build_reward_zoo, check_zoo_policy, log_toy_zoo

PROFILES = ("toy", "test")  # the paper profile loads released weights and has no zoo


@flow(name="toy-zoo", log_prints=True)
def toy_zoo(config: ZooConfig | None = None, profile: str = "toy") -> dict[str, str]:
    """Build (or reuse) the toy zoo of ``profile``; returns its folders and the MLflow run id."""
    if profile not in PROFILES:
        raise ValueError(f"the toy zoo exists for the profiles {PROFILES}, not {profile!r}")
    config = config or zoo_config(profile)
    world = make_toy_world(data_config(profile).toy_world)
    reward_zoo = build_reward_zoo(config.rewards, world)
    policy_zoo = build_policy_zoo(config.policy, world)
    checks = check_zoo_policy(config.check, policy_zoo, reward_zoo, world)
    run_id = log_toy_zoo(config, profile, world, policy_zoo, reward_zoo, checks)
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
    parser.add_argument("--profile", default="toy", choices=PROFILES)
    args = parser.parse_args(argv)
    return toy_zoo(profile=args.profile)


if __name__ == "__main__":
    main()
