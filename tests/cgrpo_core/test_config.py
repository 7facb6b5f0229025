"""Config validation, presets, profiles and the content hash."""

import subprocess
import sys

import pytest
from pydantic import ValidationError

from cgrpo_core.config import (
    PROFILE_OVERRIDES,
    AnalysisConfig,
    ExperimentConfig,
    config_hash,
    flatten,
    override,
    paper_default,
    released_code,
    with_profile,
)

# Golden hashes: a change here means every cached result of that kind is recomputed. Update them only
# for a deliberate change of what determines a result.
GOLDEN = {
    "paper_default": "80f76bb7ec6ce3da",
    "released_code": "5e9ddfa4898a79f6",
    "analysis": "8522cb039026a34c",
}

UNHASHED = {"name", "profile"}


# A changed value for every kind of leaf, valid for the field.
def _changed(path, value):
    if path == "grpo.advantage.method":
        return "linear"
    if path == "grpo.tdw.schedule":
        return "released"
    if path == "grpo.advantage.clip":
        return 4.0
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.5 if value > 0 else 0.25
    raise AssertionError(f"no change rule for {path}={value!r}")


def test_golden_hashes():
    assert config_hash(paper_default()) == GOLDEN["paper_default"]
    assert config_hash(released_code()) == GOLDEN["released_code"]
    assert config_hash(AnalysisConfig()) == GOLDEN["analysis"]


def test_hash_is_the_same_in_a_fresh_process():
    code = "from cgrpo_core.config import config_hash, released_code; print(config_hash(released_code()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == config_hash(released_code())


def test_hash_ignores_field_order_and_labels():
    cfg = released_code()
    data = cfg.model_dump()
    reordered = {k: data[k] for k in reversed(list(data))}
    reordered["grpo"] = {k: data["grpo"][k] for k in reversed(list(data["grpo"]))}
    assert config_hash(ExperimentConfig.model_validate(reordered)) == config_hash(cfg)
    relabelled = override(cfg, {"name": "another name", "profile": "toy"})
    assert config_hash(relabelled) == config_hash(cfg)


@pytest.mark.parametrize("path", [p for p in flatten(ExperimentConfig()) if p not in UNHASHED])
def test_every_result_field_changes_the_hash(path):
    cfg = ExperimentConfig()
    value = flatten(cfg)[path]
    changes = {path: _changed(path, value)}
    if path in ("grpo.tdw.w_max", "grpo.tdw.w_min"):
        changes = {path: 0.5}
    if path == "grpo.tdw.released_identity_weight":
        changes = {path: 0.4}
    changed = override(cfg, changes)
    assert config_hash(changed) != config_hash(cfg)


def test_inputs_and_type_change_the_hash():
    cfg = ExperimentConfig()
    assert config_hash(cfg, {"dataset": "aaaa"}) != config_hash(cfg)
    assert config_hash(cfg, {"dataset": "aaaa"}) != config_hash(cfg, {"dataset": "bbbb"})
    assert config_hash(cfg, {"a": "1", "b": "2"}) == config_hash(cfg, {"b": "2", "a": "1"})
    assert config_hash(AnalysisConfig(seed=0)) != config_hash(ExperimentConfig(seed=0))


def test_frozen_and_extra_forbid():
    cfg = ExperimentConfig()
    with pytest.raises(ValidationError):
        cfg.seed = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        ExperimentConfig.model_validate({"grpo": {"group_sise": 4}})


def test_validation_messages_say_what_to_change():
    with pytest.raises(ValidationError, match="set tdw.w_max = tdw.w_min"):
        override(ExperimentConfig(), {"grpo.tdw.schedule": "static"})
    with pytest.raises(ValidationError, match=r"tdw.w_min \(0.8\) must be <= tdw.w_max"):
        override(ExperimentConfig(), {"grpo.tdw.w_min": 0.8})
    with pytest.raises(ValidationError, match="group_size"):
        override(ExperimentConfig(), {"grpo.group_size": 1})
    with pytest.raises(ValidationError, match="literal_error"):
        override(ExperimentConfig(), {"grpo.advantage.method": "tanh"})


def test_override_rejects_unknown_paths():
    with pytest.raises(ValueError, match=r"no field 'alpah' \(have \['alpha'"):
        override(ExperimentConfig(), {"grpo.advantage.alpah": 0.1})
    with pytest.raises(ValueError, match="no section 'grop'"):
        override(ExperimentConfig(), {"grop.seed": 1})


def test_released_code_preset_differs_from_paper_in_the_documented_fields():
    paper, released = flatten(paper_default()), flatten(released_code())
    differing = {k for k in paper if paper[k] != released[k]}
    assert differing == {
        "name",
        "grpo.advantage.alpha",
        "grpo.tdw.schedule",
        "grpo.learning_rate",
        "grpo.timestep_fraction",
        "grpo.grad_accum",
    }
    assert released["grpo.advantage.alpha"] == 0.4 and released["grpo.learning_rate"] == 2e-5


@pytest.mark.parametrize("profile", sorted(PROFILE_OVERRIDES))
def test_profiles_change_only_sizes_and_steps(profile):
    allowed = {"profile", "sampler.num_steps", "sampler.resolution", "grpo.group_size", "grpo.max_steps"}
    base, shrunk = flatten(paper_default()), flatten(with_profile(paper_default(), profile))
    assert {k for k in base if base[k] != shrunk[k]} <= allowed
    assert shrunk["profile"] == profile
    with pytest.raises(ValueError, match="unknown profile"):
        with_profile(paper_default(), "huge")  # type: ignore[arg-type]


def test_flatten_uses_dotted_paths():
    flat = flatten(paper_default())
    assert (
        flat["grpo.tdw.w_max"] == 0.7
        and flat["sampler.num_steps"] == 25
        and flat["grpo.advantage.method"] == "sars"
    )
