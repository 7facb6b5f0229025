"""The config root: validation, presets, the one profile table, the content hash, a trained model's key."""

import subprocess
import sys
import typing

import pytest
import torch
from pydantic import BaseModel, ValidationError

from cgrpo_core.config import (
    PRESETS,
    PROFILES,
    ExperimentConfig,
    experiment_config,
    paper_default,
    policy_weights_key,
    released_code,
    training_key,
    with_profile,
)
from cgrpo_core.schema import config_hash, flatten, override
from cgrpo_core.training.steps import train_steps

# Golden hashes: a change here means every cached result of that kind is recomputed. Update them only
# for a deliberate change of what determines a result.
GOLDEN = {"paper_default": "7775f35b7e2f8fea", "released_code": "634992fcde3755bd"}


def _unhashed_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of the fields marked NOT_HASHED (and everything below them)."""
    out = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("hashed") is False:
            out.add(path)
            continue
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out |= _unhashed_paths(sub, f"{path}.")
    return out


UNHASHED = _unhashed_paths(ExperimentConfig)


def _field(path: str):
    model, *parts = ExperimentConfig, *path.split(".")
    for part in parts[:-1]:
        model = model.model_fields[part].annotation
    return model.model_fields[parts[-1]]


def _changed(path: str, value):
    """A different valid value for the leaf at ``path``."""
    annotation = _field(path).annotation
    choices = [a for a in typing.get_args(annotation) if isinstance(a, str)]
    if typing.get_origin(annotation) is typing.Literal and len(choices) > 1:
        return next(c for c in choices if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.5 if value > 0 else 0.25
    if isinstance(value, str):
        return value + "-x"
    return None  # None, tuples: covered by the listed cases below


# Leaves whose change needs a coordinated second change to stay valid, with that change.
SPECIAL = {
    "grpo.tdw.w_max": {"grpo.tdw.w_max": 0.5},
    "sft.max_steps": {"sft.max_steps": 3},
    "evaluation.prompts_per_subject": {"evaluation.prompts_per_subject": 5},
    "evaluation.metric_names": {"evaluation.metric_names": ["dino", "clip_t"]},
    "rpo.max_steps": {"rpo.max_steps": 3},
    "grpo.tdw.w_min": {"grpo.tdw.w_min": 0.5},
    "grpo.samples_per_update": {"grpo.samples_per_update": 4},
    "grpo.tdw.schedule": {"grpo.tdw.schedule": "released"},
    "grpo.tdw.released_identity_weight": {"grpo.tdw.released_identity_weight": 0.4},
    "grpo.tdw.identity_phase_start": {"grpo.tdw.identity_phase_start": 23.0},
    "sampler.resolution": {"sampler.resolution": 256},
    "policy.lora_alpha": {"policy.lora_alpha": 4.0},
    "policy.lora_targets": {"policy.lora_targets": ["attention", "mlp"]},
    "evaluation.benchmark.live_classes": {"evaluation.benchmark.live_classes": ["dog"]},
    "weights": {"weights": "toy_zoo", "sampler.resolution": 64},
    "rewards.prompt": {"rewards.prompt": "clip_t"},
    "data.filter.dino_max": {"data.filter.dino_max": 0.99},
    "policy.reference_size": {"policy.reference_size": 256},
    "policy.clip_max_length": {"policy.clip_max_length": 64},
    "policy.t5_max_length": {"policy.t5_max_length": 128},
}


def _hashed_leaves() -> list[str]:
    paths = flatten(ExperimentConfig())
    return [p for p in paths if not any(p == u or p.startswith(f"{u}.") for u in UNHASHED)]


def test_golden_hashes():
    assert config_hash(paper_default()) == GOLDEN["paper_default"]
    assert config_hash(released_code()) == GOLDEN["released_code"]


def test_hash_is_the_same_in_a_fresh_process():
    code = "from cgrpo_core.config import released_code; from cgrpo_core.schema import config_hash; "
    code += "print(config_hash(released_code()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == config_hash(released_code())


def test_hash_ignores_field_order_labels_and_settings():
    cfg = released_code()
    data = cfg.model_dump()
    reordered = {k: data[k] for k in reversed(list(data))}
    reordered["grpo"] = {k: data["grpo"][k] for k in reversed(list(data["grpo"]))}
    assert config_hash(ExperimentConfig.model_validate(reordered)) == config_hash(cfg)
    relabelled = override(cfg, {"name": "another name", "profile": "toy", "data.syncd_root": "/data/syncd"})
    assert config_hash(relabelled) == config_hash(cfg)
    assert {"name", "profile", "policy.model_folder", "data.syncd_root", "toy.world.workers"} <= UNHASHED


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in _hashed_leaves()
        if p.startswith(
            (
                "seed",
                "method",
                "weights",
                "grpo",
                "sampler",
                "sft",
                "rpo",
                "policy",
                "rewards.id",
                "rewards.prompt",
                "data",
                "evaluation.seed",
                "toy.world",
            )
        )
    ],
)
def test_every_result_field_changes_the_hash(path):
    cfg = ExperimentConfig()
    value = flatten(cfg)[path]
    changes = SPECIAL.get(path) or {path: _changed(path, value)}
    assert list(changes.values()) != [None], f"{path} = {value!r}: add a change for it to SPECIAL"
    changed = override(cfg, changes)
    assert config_hash(changed) != config_hash(cfg)


def test_inputs_and_type_change_the_hash():
    cfg = ExperimentConfig()
    assert config_hash(cfg, {"dataset": "aaaa"}) != config_hash(cfg)
    assert config_hash(cfg, {"dataset": "aaaa"}) != config_hash(cfg, {"dataset": "bbbb"})
    assert config_hash(cfg, {"a": "1", "b": "2"}) == config_hash(cfg, {"b": "2", "a": "1"})
    assert config_hash(cfg.grpo) != config_hash(cfg.sft)


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
    with pytest.raises(ValidationError, match="set sampler.resolution = toy.world.resolution"):
        override(experiment_config("toy"), {"sampler.resolution": 128})


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
        "grpo.skip_last_step",
        "grpo.samples_per_update",
        "sampler.same_group_noise",
    }
    assert released["grpo.advantage.alpha"] == 0.4 and released["grpo.learning_rate"] == 2e-5
    assert paper["sampler.same_group_noise"] is False and released["sampler.same_group_noise"] is True


def test_released_code_trains_14_of_the_first_24_transitions_through_the_preset():
    # The release drops the last of its 25 transitions and trains int(24 * 0.6) = 14 of the rest.
    cfg = released_code()
    for seed in range(5):
        steps = train_steps(cfg.grpo, cfg.sampler, torch.Generator().manual_seed(seed))
        assert len(steps) == 14 and len(set(steps.tolist())) == 14
        assert steps.max().item() <= 23
    every = train_steps(paper_default().grpo, paper_default().sampler, torch.Generator().manual_seed(0))
    assert sorted(every.tolist()) == list(range(25))  # the paper trains all T = 25


# What a profile may change: sizes, step counts, where weights come from, the toy section, and the filter
# thresholds that live on the toy scorers' scales.
PROFILE_FIELDS = {
    "profile",
    "weights",
    "policy.dtype",
    "policy.uno_lora",
    "policy.lora_rank",
    "policy.gradient_checkpointing",
    "sampler.num_steps",
    "sampler.resolution",
    "evaluation.batch_size",
    "evaluation.prompts_per_subject",
    "evaluation.subjects",
    "evaluation.bootstrap",
    "grpo.group_size",
    "grpo.max_steps",
    # the toy optimiser defaults (issue 12: a tiny LoRA needs its own lr, clip range and batches)
    "grpo.prompts_per_step",
    "sampler.eta",
    "grpo.inner_epochs",
    "grpo.learning_rate",
    "grpo.clip_range",
    "sampler.same_group_noise",  # the single-reward gate: one noise per group and a KL to the base policy
    "grpo.kl_coef",
    "sft.learning_rate",  # the toy scales every method's lr alike
    "rpo.learning_rate",
    "run.checkpoint_every",
    "run.heldout_every",
    "run.heldout_samples",
    "run.heldout_subjects",
    # test sizes of SFT and RPO
    "sft.batch_size",
    "sft.max_steps",
    "rpo.batch_size",
    "rpo.max_steps",
    "rpo.candidates",
    "data.score.identity_scorer",
    "data.score.aesthetic_scorer",
    "data.filter.dino_min",
    "data.filter.scope",
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_profiles_change_only_sizes_weights_and_the_toy_section(profile, preset):
    base = flatten(experiment_config("paper", preset))
    shrunk = flatten(experiment_config(profile, preset))
    changed = {k for k in base if base[k] != shrunk[k]}
    assert {k for k in changed if not k.startswith("toy.")} <= PROFILE_FIELDS
    assert shrunk["profile"] == profile
    # the method is the preset's, whatever the profile
    for key in base:
        if key in PROFILE_FIELDS:
            continue
        if key.startswith(("grpo.advantage", "grpo.tdw", "sft.", "rpo.")) or key in ("method", "seed"):
            assert base[key] == shrunk[key], key
    with pytest.raises(ValueError, match="unknown profile"):
        with_profile(paper_default(), "huge")  # type: ignore[arg-type]


def test_experiment_config_applies_preset_then_profile_then_changes():
    cfg = experiment_config("test", "released_code", {"seed": 3, "grpo.max_steps": 7})
    assert cfg.grpo.advantage.alpha == 0.4 and cfg.sampler.num_steps == 4 and cfg.seed == 3
    assert cfg.grpo.max_steps == 7 and cfg.profile == "test" and cfg.weights == "toy_zoo"
    with pytest.raises(ValueError, match="unknown preset 'best'"):
        experiment_config("toy", "best")


def test_flatten_uses_dotted_paths():
    flat = flatten(paper_default())
    assert flat["grpo.tdw.w_max"] == 0.7 and flat["sampler.num_steps"] == 25
    assert flat["grpo.advantage.method"] == "sars" and flat["toy.world.resolution"] == 64


def _weights_folder(path, payload: bytes):
    (path / "transformer").mkdir(parents=True)
    (path / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(payload)
    return path


def test_a_trained_model_is_keyed_by_the_weights_it_starts_from(tmp_path):
    a = _weights_folder(tmp_path / "a", b"weights of one checkpoint")
    b = _weights_folder(tmp_path / "b", b"weights of another checkpoint")
    moved = _weights_folder(tmp_path / "elsewhere" / "a", b"weights of one checkpoint")
    cfg = paper_default()
    at_a = override(cfg, {"policy.model_folder": str(a), "policy.uno_lora": None})
    key = training_key(at_a, "train-list-hash")
    # the same config hash (model_folder is a location), other weights: another key
    at_b = override(at_a, {"policy.model_folder": str(b)})
    assert config_hash(at_a) == config_hash(at_b) and training_key(at_b, "train-list-hash") != key
    assert training_key(override(at_a, {"policy.model_folder": str(moved)}), "train-list-hash") == key
    assert training_key(at_a, "another-list") != key  # the training list it read
    assert policy_weights_key(cfg.policy) == "black-forest-labs/FLUX.1-dev+bytedance-research/UNO"


def test_a_trained_model_key_ignores_what_does_not_train_it(tmp_path):
    cfg = override(paper_default(), {"policy.model_folder": str(_weights_folder(tmp_path / "w", b"x"))})
    key = training_key(cfg, "list")
    for change in (
        {"evaluation.seed": 5, "evaluation.batch_size": 3, "evaluation.prompts_per_subject": 2},
        {"sft.epochs": 9},
        {"rpo.beta": 2.0},
        {"data.filter.top_k": 5},
        {"toy.world.seed": 4},
        {"name": "renamed"},
        {"run.checkpoint_every": 3, "run.heldout_every": 7, "run.processes": 8},
    ):
        assert training_key(override(cfg, change), "list") == key, change
    for change in (
        {"grpo.learning_rate": 3e-5},
        {"seed": 1},
        {"sampler.eta": 0.7},
        {"rewards.prompt": "clip_t"},
    ):
        assert training_key(override(cfg, change), "list") != key, change
    sft = override(cfg, {"method": "sft"})
    assert training_key(override(sft, {"grpo.learning_rate": 3e-5}), "list") == training_key(sft, "list")
    assert training_key(override(sft, {"sft.epochs": 9}), "list") != training_key(sft, "list")
    with pytest.raises(ValueError, match="resolved weights"):
        training_key(experiment_config("toy"), "list")


def test_a_field_hashed_when_set_keeps_the_keys_from_before_it_until_it_is_set():
    from pydantic import Field

    from cgrpo_core.schema import HASHED_WHEN_SET, Frozen

    class Before(Frozen):
        steps: int = 3

    class After(Frozen):
        steps: int = 3
        subjects: int | None = Field(None, json_schema_extra=HASHED_WHEN_SET)

    # the type's name is hashed too: compare models of one name
    Before.__name__ = After.__name__ = "Section"
    assert config_hash(After()) == config_hash(Before())
    assert config_hash(After(subjects=10)) != config_hash(After())
    assert config_hash(After(subjects=10)) != config_hash(After(subjects=11))
    tested = experiment_config("test")
    assert tested.evaluation.subjects == 10
    assert config_hash(tested) != config_hash(override(tested, {"evaluation.subjects": None}))
