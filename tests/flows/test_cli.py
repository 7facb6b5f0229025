"""The command line every stage shares: profile, preset, seed and --set build one experiment config."""

import argparse
import os

import pytest

from cgrpo_core.config import experiment_config
from flows.cli import add_experiment_arguments, experiment_from_args, parse_changes


def _parse(argv, profiles=()):
    parser = argparse.ArgumentParser()
    add_experiment_arguments(parser, profiles)
    return parser.parse_args(argv)


def test_set_values_are_json_where_they_parse():
    assert parse_changes(
        ["grpo.max_steps=6", "policy.uno_lora=null", "name=a=b", "data.filter.scope=image"]
    ) == {
        "grpo.max_steps": 6,
        "policy.uno_lora": None,
        "name": "a=b",
        "data.filter.scope": "image",
    }
    assert parse_changes(['policy.lora_targets=["attention", "mlp"]']) == {
        "policy.lora_targets": ["attention", "mlp"]
    }
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_changes(["grpo.max_steps"])


def test_preset_profile_seed_and_changes_in_order():
    args = _parse(
        ["--profile", "test", "--preset", "released_code", "--seed", "3", "--set", "grpo.max_steps=6"]
    )
    cfg = experiment_from_args(args, **{"data.syncd_root": "/data/syncd", "evaluation.benchmark.root": None})
    expected = experiment_config(
        "test", "released_code", {"seed": 3, "grpo.max_steps": 6, "data.syncd_root": "/data/syncd"}
    )
    assert cfg == expected and cfg.grpo.advantage.alpha == 0.4 and cfg.evaluation.benchmark.root is None


def test_bad_input_names_what_to_fix():
    with pytest.raises(SystemExit, match="no field 'max_step'"):
        experiment_from_args(_parse(["--set", "grpo.max_step=6"]))
    with pytest.raises(SystemExit, match="greater than or equal to 2"):
        experiment_from_args(_parse(["--set", "grpo.group_size=1"]))
    with pytest.raises(SystemExit):
        _parse(["--profile", "paper"], profiles=("toy", "test"))


def test_serving_with_its_own_server_points_prefect_at_it_before_importing_prefect(monkeypatch):
    """``flows.serve --run`` without ``$PREFECT_API_URL`` starts a server and must talk to it: prefect reads
    its settings once, at import, and a client made before the URL is set starts a temporary server of its
    own (on the same database). The URL is in the environment before the first prefect import."""
    from contextlib import nullcontext

    import flows.serve as serve

    url = "http://127.0.0.1:9/api"
    seen = []
    monkeypatch.setenv("PREFECT_API_URL", "")  # none set (restored after the test)
    monkeypatch.setattr(serve, "local_server", lambda stack, env, logs: url)
    monkeypatch.setattr(serve, "_process", lambda *args: nullcontext())

    def deployed(env):
        seen.append(os.environ.get("PREFECT_API_URL"))
        return True

    monkeypatch.setattr(serve, "_deployed", deployed)

    class Stop(Exception):
        pass

    def run_deployment(name, **kwargs):
        seen.append(os.environ.get("PREFECT_API_URL"))
        raise Stop(name)

    import prefect.deployments

    monkeypatch.setattr(prefect.deployments, "run_deployment", run_deployment)
    with pytest.raises(Stop, match="reproduce-paper/table-3"):
        serve.run_target("table-3", {}, "test")
    assert seen == [url, url]
