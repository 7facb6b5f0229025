"""One config root: :class:`ExperimentConfig` fully describes one trained model and how it is evaluated.

Sections (each defined beside the code it configures, each ``extra="forbid"`` with a description per field):

- ``policy``      :class:`~cgrpo_core.policy.config.PolicyConfig`: base weights, dtype, the trained LoRA
- ``rewards``     :class:`~cgrpo_core.rewards.config.RewardsConfig`: the identity and prompt rewards by role
- ``data``        :class:`~cgrpo_core.data.config.DataConfig`: SynCD, scored and filtered: the training list
- ``sampler``     :class:`~cgrpo_core.policy.config.SamplerConfig`: steps, shift, eta, guidance, resolution
- ``grpo``, ``sft``, ``rpo``  :mod:`cgrpo_core.training.config`: the method's section (``method`` picks it)
- ``evaluation``  :class:`~cgrpo_core.evaluation.config.EvalConfig`: benchmark, metric models, seeds
- ``toy``         :class:`~cgrpo_core.toy.config.ToyConfig`: toy world and zoo (read with ``weights=toy_zoo``)
- ``run``         :class:`~cgrpo_core.training.config.TrainRunConfig`: checkpoints, held-out checks (unhashed)
- ``seed``, ``method``, ``weights``; ``name`` and ``profile`` are labels (not hashed).

Presets (:data:`PRESETS`, :func:`paper_default`, :func:`released_code`) and profiles (:data:`PROFILES`) are
dotted overrides of the defaults, which are the paper's values (appendix A). A profile changes only sizes,
step counts, where weights come from, and the thresholds that live on the toy scorers' scales; a test
checks that. :func:`experiment_config` applies a preset, then a profile, then a user's changes (``--set``).

With ``weights = "toy_zoo"`` the policy and reward sections name nothing yet: the flows build the toy zoo
and :func:`cgrpo_core.toy.zoo.with_toy_weights` resolves them into ``configured`` sections whose model ids
carry the zoo's content key. :func:`training_key` is the identity of a trained model: the sections that
determine it plus the fingerprint of the weights it starts from and the hash of the training list it reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from cgrpo_core.data.config import DataConfig
from cgrpo_core.evaluation.config import EvalConfig
from cgrpo_core.policy.config import PolicyConfig, SamplerConfig
from cgrpo_core.rewards.config import RewardsConfig, used_sections
from cgrpo_core.schema import NOT_HASHED, Frozen, Profile, config_hash, override
from cgrpo_core.store import folder_fingerprint
from cgrpo_core.toy.config import ToyConfig
from cgrpo_core.training.config import GRPOConfig, RPOConfig, SFTConfig, TrainRunConfig

__all__ = [
    "PRESETS",
    "PROFILES",
    "ExperimentConfig",
    "Method",
    "Weights",
    "experiment_config",
    "paper_default",
    "policy_weights_key",
    "released_code",
    "training_key",
    "with_profile",
]

Method = Literal["base", "sft", "rpo", "grpo"]  # base: the untrained model (Table 2 'UNO (Base)')
Weights = Literal["configured", "toy_zoo"]


class ExperimentConfig(Frozen):
    """One experiment: everything that determines its result, plus labels that do not."""

    name: str = Field("customized-grpo", description="Human-readable run name.", json_schema_extra=NOT_HASHED)
    profile: Profile = Field(
        "paper", description="paper, toy or test (a label).", json_schema_extra=NOT_HASHED
    )
    seed: int = Field(0, description="Seed of every random choice of the training run.")
    method: Method = Field("grpo", description="What trains the LoRA: base (nothing), sft, rpo or grpo.")
    weights: Weights = Field(
        "configured",
        description="Where the policy and reward weights come from: configured (the policy and rewards "
        "sections: folders or the hub cache; paper profile) or toy_zoo (the toy zoo, trained on the toy "
        "world first and reused by content; toy and test profiles).",
    )
    policy: PolicyConfig = PolicyConfig()
    rewards: RewardsConfig = RewardsConfig()
    data: DataConfig = DataConfig()
    sampler: SamplerConfig = SamplerConfig()
    grpo: GRPOConfig = GRPOConfig()
    sft: SFTConfig = SFTConfig()
    rpo: RPOConfig = RPOConfig()
    evaluation: EvalConfig = EvalConfig()
    toy: ToyConfig = ToyConfig()
    run: TrainRunConfig = Field(
        TrainRunConfig(),
        description="Checkpoints, held-out checks and processes of a training run (not hashed).",
        json_schema_extra=NOT_HASHED,
    )

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if self.weights == "toy_zoo" and self.sampler.resolution != self.toy.world.resolution:
            raise ValueError(
                f"sampler.resolution is {self.sampler.resolution} but the toy world's images are "
                f"{self.toy.world.resolution} px: set sampler.resolution = toy.world.resolution"
            )
        return self


# ---------------------------------------------------------------------------------------------------
# Presets and profiles

# name -> dotted changes of the defaults (the paper's values).
PRESETS: dict[str, dict[str, Any]] = {
    "paper_default": {},
    # The authors' released trainer and config (reference/NOTES.md).
    "released_code": {
        "name": "customized-grpo-released",
        "grpo.advantage.alpha": 0.4,  # config `gamma`
        "grpo.tdw.schedule": "released",  # its weight function; see TDWConfig for what the run did
        "grpo.learning_rate": 2e-5,
        "grpo.timestep_fraction": 0.6,  # int(24 * 0.6) = 14 ...
        "grpo.skip_last_step": True,  # ... of the first 24 transitions
        "grpo.samples_per_update": 4,
        "sampler.same_group_noise": True,  # init_same_noise: true
    },
}

_TOY_SIZES: dict[str, Any] = {
    "weights": "toy_zoo",
    "policy.dtype": "float32",  # a CPU profile: no bf16 kernels to gain from
    "policy.uno_lora": None,  # the toy base policy is trained whole, there is no UNO LoRA to fuse
    "policy.lora_rank": 8,
    "policy.gradient_checkpointing": False,  # ~40% faster on the toy model, memory is no concern
    "sampler.num_steps": 10,
    "sampler.resolution": 64,
    # Toy GRPO (issue 12, docs/training.md, "Toy defaults"): chosen on naive GRPO 1:1's own rewards alone
    # (held-out ToyBench and training curves, seed 0), before any method was compared, at the size that
    # trains a row in about 2 minutes on 2 cores (~5 s a step): the largest lr that did not lower its
    # held-out rewards (3e-3 lowered the toy HPSv3 by 1.0; 1e-3 over 30 steps moved nothing). The paper's
    # clip range 1e-4 and lr 1e-5 are for a 12B model; here neither the clip nor gradient clipping acts.
    "sampler.eta": 0.7,  # identity-only GRPO, seed 0: held-out DINO-Seg +0.019 at 0.7, -0.013 at 0.4
    "grpo.prompts_per_step": 4,
    "grpo.group_size": 8,
    "grpo.inner_epochs": 1,
    "grpo.learning_rate": 2e-3,
    "grpo.clip_range": 1e-3,
    "grpo.max_steps": 20,
    # The single-reward gate (docs/training.md, "One noise per group and a KL term"), chosen on single-reward
    # runs alone, 5 seeds: with both, prompt-only GRPO raises the toy HPSv3 on every seed (+0.14 [+0.10,
    # +0.19]) without lowering CLIP-T, and identity-only moves DINO-Seg by +0.001 to +0.028 without lowering
    # DINO or CLIP-I (+0.010 [-0.004, +0.023]); with neither, single seeds collapsed (CLIP-T -0.31).
    # A group's spread then comes from the SDE noise alone (the released code's init_same_noise), and
    # Flow-GRPO's KL to the base policy (beta 0.04) keeps the LoRA near it. The paper's preset has neither.
    "sampler.same_group_noise": True,
    "grpo.kl_coef": 0.04,
    # SFT and RPO: the paper gives every method lr 1e-5; the toy scales them alike (x 200, as GRPO's).
    "sft.learning_rate": 2e-3,
    "rpo.learning_rate": 2e-3,
    "run.checkpoint_every": 10,
    "run.heldout_every": 10,
    # 5 of each subject's 25 prompts (150 items x 4 images): ~40 s a row on 2 cores, so that the whole toy
    # reproduction (25 evaluated rows) fits its 90 minutes; the paper profile keeps all 750 items.
    "evaluation.prompts_per_subject": 5,
    "evaluation.batch_size": 64,  # 16 items a unit: the fastest toy batch on 2 cores (docs/evaluation.md)
    # Filter thresholds on the toy scorers' scales (the zoo's DINO-Seg model and aesthetic head) and
    # SynCD's image scope, measured on the default toy world (docs/data.md).
    "data.filter.dino_min": 0.6,
    "data.filter.scope": "image",
}
_TINY_VIT = {"image_size": 32, "hidden": 32, "layers": 1, "heads": 2}
_TEST_SIZES: dict[str, Any] = {
    **_TOY_SIZES,
    "sampler.num_steps": 4,
    "sampler.resolution": 32,
    "grpo.group_size": 4,
    "grpo.prompts_per_step": 2,
    "grpo.inner_epochs": 1,
    "grpo.max_steps": 2,
    "run.checkpoint_every": 1,
    "run.heldout_every": 2,
    "run.heldout_samples": 1,
    "run.heldout_subjects": 6,  # 6 of ToyBench's 30: a check in seconds (every row of the tests makes two)
    "evaluation.prompts_per_subject": 2,
    "evaluation.subjects": 10,  # 20 items x 4 images: an evaluated row of the tests in seconds
    "evaluation.batch_size": 16,
    "evaluation.bootstrap": 200,
    "sft.batch_size": 2,
    "sft.max_steps": 2,
    "rpo.batch_size": 2,
    "rpo.max_steps": 2,
    "rpo.candidates": 2,
    # The model-free baseline scorers: seconds, no reward zoo needed to prepare data.
    "data.score.identity_scorer": "histogram",
    "data.score.aesthetic_scorer": "noise",
    "data.filter.dino_min": 0.64,
    "toy.world.resolution": 32,
    "toy.world.supersample": 2,
    "toy.world.syncd_sets": 40,
    "toy.world.bench_images": 2,
    "toy.zoo.policy.vae.steps": 200,
    "toy.zoo.policy.policy.steps": 40,
    "toy.zoo.policy.policy.batch_size": 16,
    "toy.zoo.policy.policy.warmup_steps": 5,
    "toy.zoo.policy.policy.ema_decay": None,
    **{
        f"toy.zoo.rewards.{model}.{k}": v
        for model in ("dinov2", "dino_v1", "clip")
        for k, v in _TINY_VIT.items()
    },
    **{f"toy.zoo.rewards.{m}.steps": 40 for m in ("dinov2", "dino_v1")},
    **{f"toy.zoo.rewards.{m}.warmup_steps": 5 for m in ("dinov2", "dino_v1", "clip", "hpsv3")},
    **{f"toy.zoo.rewards.{m}.sets_per_batch": 16 for m in ("dinov2", "dino_v1")},
    "toy.zoo.rewards.clip.steps": 80,
    "toy.zoo.rewards.clip.batch_size": 32,
    "toy.zoo.rewards.clip.projection": 32,
    "toy.zoo.rewards.clip.vocab_size": 600,
    "toy.zoo.rewards.aesthetic.steps": 150,
    "toy.zoo.rewards.segmenter.steps": 250,
    "toy.zoo.rewards.segmenter.learning_rate": 1e-2,
    "toy.zoo.rewards.segmenter.hidden": (8, 16),
    "toy.zoo.rewards.hpsv3.hidden": 32,
    "toy.zoo.rewards.hpsv3.heads": 2,
    "toy.zoo.rewards.hpsv3.layers": 1,
    "toy.zoo.rewards.hpsv3.vision_depth": 1,
    "toy.zoo.rewards.hpsv3.vision_dim": 16,
    "toy.zoo.rewards.hpsv3.image_pixels": 4 * 28 * 28,
    "toy.zoo.rewards.hpsv3.vocab_size": 1500,
    "toy.zoo.rewards.hpsv3.short_steps": 20,
    "toy.zoo.rewards.hpsv3.steps": 4,
    "toy.zoo.rewards.hpsv3.boxes_per_step": 2,
    "toy.zoo.rewards.corpus.sets": 12,
    "toy.zoo.rewards.checks.world_sets": 12,
    "toy.zoo.rewards.checks.swap_subjects": 6,
    "toy.zoo.rewards.checks.caption_batch": 8,
    "toy.zoo.check.prompts_per_subject": 2,
    "toy.zoo.check.samples_per_item": 2,
    "toy.zoo.check.grid_rows": 4,
}

# The one profile table: profile -> dotted changes (sizes, steps, weight sources, toy-scale thresholds).
PROFILES: dict[str, dict[str, Any]] = {"paper": {}, "toy": _TOY_SIZES, "test": _TEST_SIZES}


def with_profile(cfg: ExperimentConfig, profile: Profile) -> ExperimentConfig:
    """``cfg`` at the sizes of ``profile`` (paper, toy, test)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    return override(cfg, {**PROFILES[profile], "profile": profile})


def experiment_config(
    profile: Profile = "toy", preset: str = "paper_default", changes: dict[str, Any] | None = None
) -> ExperimentConfig:
    """A preset at the sizes of a profile, then ``changes`` (dotted paths, e.g. ``{"seed": 1}``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    cfg = with_profile(override(ExperimentConfig(), PRESETS[preset]), profile)
    return override(cfg, changes) if changes else cfg


def paper_default(profile: Profile = "paper") -> ExperimentConfig:
    """Customized-GRPO as the paper describes it (appendix A): SARS alpha 0.5, TDW 0.7/0.3, lr 1e-5."""
    return experiment_config(profile, "paper_default")


def released_code(profile: Profile = "paper") -> ExperimentConfig:
    """Customized-GRPO as the authors' released code runs it (reference/NOTES.md)."""
    return experiment_config(profile, "released_code")


# ---------------------------------------------------------------------------------------------------
# The identity of a trained model


def policy_weights_key(policy: PolicyConfig) -> str:
    """What the policy's base weights are: the fingerprint of its local folder (and UNO LoRA file), or the
    hub ids it names (the hub cache holds one revision per id)."""
    parts = [folder_fingerprint(policy.model_folder) if policy.model_folder else policy.base_model]
    if policy.uno_lora is not None:
        parts.append(folder_fingerprint(policy.uno_lora_file) if policy.uno_lora_file else policy.uno_lora)
    return "+".join(parts)


class TrainedModel(Frozen):
    """What a trained model is made of (:func:`training_key` hashes it): nothing else of the experiment."""

    seed: int
    method: Method
    policy: PolicyConfig
    sampler: SamplerConfig
    section: GRPOConfig | SFTConfig | RPOConfig | None  # the method's own section (base: none)
    rewards: RewardsConfig | None  # the two rewards, for methods that score samples (grpo, rpo)


def training_key(cfg: ExperimentConfig, train_list: str, extra: dict[str, str] | None = None) -> str:
    """Content key of the model ``cfg`` trains from the training list whose hash is ``train_list``.

    Covers the method and its section, the policy (and the fingerprint of its base weights), the rewards
    the method reads, the sampler and the seed; not the labels, the evaluation, the data-preparation
    settings (they reach the model only through the training list) or the toy section (it reaches it
    only through the resolved weights). Needs resolved weights (``weights = configured``).
    """
    if cfg.weights != "configured":
        raise ValueError(
            "training_key needs resolved weights: resolve the toy zoo's first (with_toy_weights)"
        )
    method = getattr(cfg, cfg.method) if cfg.method != "base" else None
    rewards = None
    if cfg.method in ("grpo", "rpo"):  # they score samples with the two rewards
        models = used_sections(cfg.rewards.models, (cfg.rewards.id, cfg.rewards.prompt))
        rewards = cfg.rewards.model_copy(update={"models": models})
    relevant = TrainedModel(
        seed=cfg.seed,
        method=cfg.method,
        policy=cfg.policy,
        sampler=cfg.sampler,
        section=method,
        rewards=rewards,
    )
    inputs = {"weights": policy_weights_key(cfg.policy), "train_list": train_list, **(extra or {})}
    return config_hash(relevant, inputs)
