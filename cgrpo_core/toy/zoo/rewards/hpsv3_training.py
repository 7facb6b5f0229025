"""Toy HPSv3: a tiny Qwen2-VL with HPSv3's reward head, trained to rank toy (image, prompt) pairs.

HPSv3 (Ma et al. 2025) is Qwen2-VL-7B-Instruct plus a ``<|Reward|>`` token and an MLP head giving (mu,
sigma), trained on human preference pairs with an uncertainty-aware ranking loss. The toy one has the same
classes, prompt, head and file layout (read by :func:`~cgrpo_core.rewards.hpsv3.load_hpsv3_model`):

- base folder: a tiny ``Qwen2VLConfig``, a byte-level BPE ``Qwen2Tokenizer`` learned from HPSv3's
  instruction with the toy captions and DreamBench prompts filled in (rewards' ``train_qwen2_tokenizer``,
  Qwen2-VL's chat template) and a ``Qwen2VLImageProcessor``;
- weights: ``HPSv3.safetensors``, the whole reward model's state dict in the released (transformers 4.4x)
  key naming, with ``lm_head``;
- training data, the toy stand-in for human preferences, in both caption styles the reward will read:
  the toy SynCD + corpus views with their SynCD captions, and renders of the toy SynCD's subjects as
  ToyBench's DreamBench prompts ask ("a dog wearing a red hat", "a purple dog", "a dog in the snow";
  prompt_renders.py: re-planned from world.json, ToyBench's subjects held out). Preferences come in boxes
  of two items a, b (one subject for another prompt, or two subjects): each prompt prefers its own image
  (within prompt: prompt following), each image its own prompt (within image: both prompts win once and
  lose once, so no prompt can buy a high score whatever the image), the clean image its degraded copy
  (visual quality); see :func:`box`. An earlier toy HPSv3 trained on the within-image and quality pairs of
  SynCD captions alone scored ToyBench's prompts by their wording (+15 for every "in the jungle", -14 for
  every accessory prompt, whatever the image);
- loss: Bradley-Terry on mu, ``-log sigmoid(mu_win - mu_lose)`` (HPSv3's loss also learns sigma; the
  reward reads only mu), plus the captioning loss of the base VLM (next-token prediction of the prompt on
  the sequences that show an image with its own prompt: HPSv3 starts from a pretrained VLM, the toy one
  from scratch; without it the toy model learnt backgrounds only). The head's mu starts at
  ``score_offset`` so scores sit on HPSv3's scale.

Training runs the reward's own input path (:meth:`HPSv3.inputs`: resize to ``image_pixels``, chat
template, placeholder expansion; :class:`TrainingInputs` caches each prompt's tokens) on the model as the
loader builds it, so the saved file scores exactly as trained: first ``short_steps`` on the short form
(the fixed instruction left out, every other token at its real position), then ``steps`` on the real
input. An optional vision phase comes first (``vision``, :func:`train_vision`): the vision tower alone on
direct labels (clean or degraded copy, a render's scene, accessory, property), then frozen: the toy
stand-in for Qwen2-VL's pretrained tower (docs/zoo.md measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import Qwen2VLConfig, Qwen2VLImageProcessorPil, Qwen2VLModel

from cgrpo_core.rewards.hpsv3 import HPSv3, HPSv3Model, load_hpsv3_model, resize_to_pixels, reward_head
from cgrpo_core.rewards.hpsv3_prompt import INSTRUCTION, REWARD_SUFFIX
from cgrpo_core.toy.tiny.hpsv3 import QWEN2_VL_CHAT_TEMPLATE, train_qwen2_tokenizer
from cgrpo_core.toy.world.backgrounds import CONTEXTS
from cgrpo_core.toy.world.parts import ACCESSORIES
from cgrpo_core.toy.world.prompts import spec_for_template
from cgrpo_core.toy.world.render import PROPERTIES
from cgrpo_core.toy.zoo.rewards.config import (
    VISION_TARGETS,
    DegradationConfig,
    HPSv3TrainConfig,
    hpsv3_config,
)
from cgrpo_core.toy.zoo.rewards.data import ViewData, degrade_view, world_corpus
from cgrpo_core.toy.zoo.rewards.prompt_renders import (
    PromptRenders,
    choose_templates,
    render_prompts,
    syncd_subjects,
    toybench_subjects,
    world_render_size,
)
from cgrpo_core.training.optim import Curve, adamw, optimizer_step, phases

__all__ = [
    "ATTRIBUTES",
    "MIX",
    "WEIGHTS_FILE",
    "HPSv3Data",
    "Pool",
    "TrainingInputs",
    "VisionHeads",
    "box",
    "bradley_terry",
    "caption_loss",
    "build_hpsv3",
    "draw_pair",
    "instruction_span",
    "make_pool",
    "preference_step",
    "released_state",
    "render_attributes",
    "scores_and_hidden",
    "short_inputs",
    "train_hpsv3",
    "train_vision",
    "training_renders",
    "vision_batch",
]

WEIGHTS_FILE = "HPSv3.safetensors"
SHORT_TAIL = 4  # instruction tokens kept before the prompt in the short form ("Textual prompt -")
SPECIAL_IDS = (
    ("image_token_id", "<|image_pad|>"),
    ("video_token_id", "<|video_pad|>"),
    ("vision_start_token_id", "<|vision_start|>"),
    ("vision_end_token_id", "<|vision_end|>"),
)


def _qwen2_vl_config(tokenizer, cfg: HPSv3TrainConfig) -> Qwen2VLConfig:
    half = cfg.hidden // cfg.heads // 2  # rotary frequencies per head, split over (time, height, width)
    special = {name: tokenizer.convert_tokens_to_ids(token) for name, token in SPECIAL_IDS}
    return Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer) + 1,  # + <|Reward|>, added by the HPSv3 loader
            "hidden_size": cfg.hidden,
            "intermediate_size": 2 * cfg.hidden,
            "num_hidden_layers": cfg.layers,
            "num_attention_heads": cfg.heads,
            "num_key_value_heads": 1,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": [half // 4, 3 * half // 8, 3 * half // 8],  # Qwen2-VL-7B: 16, 24, 24
            },
            "bos_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": cfg.vision_depth,
            "embed_dim": cfg.vision_dim,
            "hidden_size": cfg.hidden,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        **special,
    )


def released_state(model: HPSv3Model) -> dict[str, torch.Tensor]:
    """The reward model's state dict as HPSv3 releases it: ``visual.*``, ``model.*`` (language model),
    ``lm_head.weight`` (here the input embeddings; unused for a score), ``rm_head.*``."""
    state = {}
    for key, value in model.backbone.state_dict().items():
        name = key if key.startswith("visual.") else "model." + key.removeprefix("language_model.")
        state[name] = value.detach().contiguous()
    state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
    state |= {f"rm_head.{k}": v.detach().contiguous() for k, v in model.head.state_dict().items()}
    return state


def build_hpsv3(folder: str | Path, train: HPSv3TrainConfig, corpus: list[str]) -> Path:
    """Write a randomly initialised toy HPSv3 into ``folder`` (base/ + HPSv3.safetensors); returns folder."""
    folder, base = Path(folder), Path(folder) / "base"
    texts = [INSTRUCTION.format(text_prompt=t) + REWARD_SUFFIX for t in corpus] + [
        "You are a helpful assistant."
    ]
    tokenizer = train_qwen2_tokenizer(texts, vocab_size=train.vocab_size)
    tokenizer.chat_template = QWEN2_VL_CHAT_TEMPLATE
    tokenizer.save_pretrained(base)
    Qwen2VLImageProcessorPil(
        min_pixels=train.image_pixels // 4,
        max_pixels=train.image_pixels * 4,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    ).save_pretrained(base)
    config = _qwen2_vl_config(tokenizer, train)
    config.save_pretrained(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train.seed)
        model = HPSv3Model(Qwen2VLModel(config), reward_head(train.hidden), len(tokenizer))
    with torch.no_grad():
        model.head[5].bias[0] += train.score_offset  # mu starts on HPSv3's scale
    save_file(released_state(model), str(folder / WEIGHTS_FILE))
    return folder


@dataclass(frozen=True)
class HPSv3Data:
    """What the toy HPSv3 learns from: the caption-reading views (toy SynCD + corpus) and the toy worlds
    they come from (the training world first: its ToyBench is held out of every render; then the corpus
    world), whose subjects are re-planned and drawn as DreamBench prompts ask (prompt_renders.py)."""

    views: ViewData
    worlds: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Pool:
    """Items boxes are drawn from: clean images, their degraded copies, prompts and groups (a toy SynCD set,
    or a rendered subject). ``partners[i]``: the items of i's group with another prompt (same subject,
    something else asked)."""

    images: list[Image.Image]
    degraded: list[Image.Image]
    prompts: list[str]
    labels: np.ndarray
    partners: list[np.ndarray]
    paired: np.ndarray  # the items that have a partner
    attributes: np.ndarray  # (N, 3): what each image shows (ATTRIBUTES), -1 where unknown

    def __len__(self) -> int:
        return len(self.images)


# What a render shows, as its DreamBench template asks: its scene (a recontextualisation painter, or the
# plain background), its worn accessory and its property change (index 0: none). With "clean or degraded
# copy", the labels of the vision phase (VISION_TARGETS, in this order after "degraded").
ATTRIBUTES = (
    ("plain", *sorted(set(CONTEXTS.values()) - {"plain"})),
    ("none", *sorted(ACCESSORIES)),
    ("none", *sorted(PROPERTIES)),
)


def render_attributes(templates: list[str]) -> np.ndarray:
    """(N, 3) indices into ATTRIBUTES of the scene, accessory and property each DreamBench template asks."""
    rows = []
    for template in templates:
        spec = spec_for_template(template)
        values = (spec.context, spec.accessory or "none", spec.prop or "none")
        rows.append([names.index(v) for names, v in zip(ATTRIBUTES, values, strict=True)])
    return np.asarray(rows, dtype=int).reshape(-1, len(ATTRIBUTES))


def make_pool(
    images: np.ndarray,
    prompts: list[str],
    labels: np.ndarray,
    degraded: list[np.ndarray],
    attributes: np.ndarray | None = None,
) -> Pool:
    """A :class:`Pool` of uint8 (N, H, W, 3) ``images`` with their ``prompts``, group ``labels``, degraded
    copies and, where known, ``attributes`` (N, 3) (else -1)."""
    partners = []
    for i in range(len(images)):
        mates = [j for j in np.flatnonzero(labels == labels[i]) if prompts[j] != prompts[i]]
        partners.append(np.asarray(mates, dtype=int))
    if attributes is None:
        attributes = np.full((len(images), len(ATTRIBUTES)), -1, dtype=int)
    return Pool(
        [Image.fromarray(x) for x in images],
        [Image.fromarray(x) for x in degraded],
        list(prompts),
        np.asarray(labels),
        partners,
        np.asarray([i for i, p in enumerate(partners) if len(p)], dtype=int),
        np.asarray(attributes, dtype=int),
    )


def draw_pair(pool: Pool, same_group: bool, rng: np.random.Generator) -> tuple[int, int] | None:
    """Two items (a, b) with different prompts: of one group (same subject, another prompt: another view of
    a set, another template's render) or of two groups (another subject); None if the pool has none."""
    if same_group:
        if not len(pool.paired):
            return None
        a = int(pool.paired[int(rng.integers(len(pool.paired)))])
        return a, int(pool.partners[a][int(rng.integers(len(pool.partners[a])))])
    for _ in range(100):  # another group, another prompt (rejection: groups are small)
        a, b = (int(k) for k in rng.integers(len(pool), size=2))
        if pool.labels[a] != pool.labels[b] and pool.prompts[a] != pool.prompts[b]:
            return a, b
    return None


# Box of items a, b: sequences (a | p_a), (b | p_a), (a | p_b), (b | p_b) [, (degraded a | p_a)] and the
# preferences among them, (winner, loser) sequence indices: for each prompt its own image wins (within
# prompt: prompt following), for each image its own prompt wins (within image: no prompt can score high
# whatever the image, as each loses on the other's image), the clean image wins over its degraded copy.
WITHIN_PROMPT = ((0, 1), (3, 2))
WITHIN_IMAGE = ((0, 2), (3, 1))
QUALITY = ((0, 4),)


def box(
    pool: Pool, a: int, b: int, degraded: bool
) -> tuple[list[tuple[Image.Image, str]], list[tuple[int, int]]]:
    """The sequences (image, prompt) of the box of items ``a`` and ``b`` and its preferences (see above)."""
    sequences = [
        (pool.images[a], pool.prompts[a]),
        (pool.images[b], pool.prompts[a]),
        (pool.images[a], pool.prompts[b]),
        (pool.images[b], pool.prompts[b]),
    ]
    pairs = list(WITHIN_PROMPT + WITHIN_IMAGE)
    if degraded:
        sequences.append((pool.degraded[a], pool.prompts[a]))
        pairs += list(QUALITY)
    return sequences, pairs


MIX = ("renders, one subject", "renders, two subjects", "SynCD, one set", "SynCD, two sets")


def preference_step(
    pools: tuple[Pool | None, Pool], cfg: HPSv3TrainConfig, rng: np.random.Generator
) -> tuple[list[tuple[Image.Image, str]], torch.Tensor]:
    """One step's sequences and preferences [M, 2] (winner, loser): ``boxes_per_step`` boxes, each of the
    kind ``cfg.mix`` draws (MIX; renders or SynCD views, one group or two), a share ``quality_share`` with
    the degraded copy. Without renders their shares go to the SynCD kinds; a kind that has no pair to draw
    is dropped for the step."""
    shares = np.asarray(cfg.mix, dtype=float)
    if pools[0] is None:  # no renders: their boxes are drawn from the SynCD views (one group, two groups)
        shares = np.r_[0.0, 0.0, shares[2:] + shares[:2]]
    sequences, pairs, boxes = [], [], 0
    while boxes < cfg.boxes_per_step:
        kind = int(rng.choice(len(shares), p=shares / shares.sum()))
        pool = pools[kind // 2]
        drawn = draw_pair(pool, kind % 2 == 0, rng)
        if drawn is None:
            shares[kind] = 0
            if not shares.sum():
                raise ValueError("the toy HPSv3 has no preference pair to learn from: pools too small")
            continue
        seqs, prefs = box(pool, *drawn, degraded=bool(rng.random() < cfg.quality_share))
        pairs += [(w + len(sequences), lose + len(sequences)) for w, lose in prefs]
        sequences += seqs
        boxes += 1
    return sequences, torch.tensor(pairs)


def instruction_span(scorer: HPSv3) -> tuple[int, int]:
    """Token columns [start, stop) of HPSv3's fixed instruction text (after the image, before its last
    words "Textual prompt -"): the same in every sequence, as every image has the same token count."""
    image = Image.new("RGB", (28, 28))
    probes = [scorer.inputs([(image, word)])["input_ids"][0] for word in ("a", "the")]
    common = int((probes[0][: len(probes[1])] != probes[1][: len(probes[0])]).int().argmax())  # prompt start
    vision_end = scorer.model.backbone.config.vision_end_token_id
    start = int((probes[0] == vision_end).int().argmax()) + 1
    return start, common - SHORT_TAIL


def short_inputs(scorer: HPSv3, pairs: list[tuple[Image.Image, str]], span: tuple[int, int]) -> dict:
    """HPSv3's real input with the instruction's fixed tokens (``span``) left out but every other token at
    its real 3-D rotary position (the warm-up curriculum's short form): the image, "Textual prompt - ",
    the prompt and the reward suffix, ~10x shorter, relative positions as in the real input."""
    full = scorer.inputs(pairs)
    positions, _ = scorer.model.backbone.get_rope_index(
        full["input_ids"],
        mm_token_type_ids=full["mm_token_type_ids"],
        image_grid_thw=full["image_grid_thw"],
        attention_mask=full["attention_mask"],
    )  # (3, B, L)
    keep = torch.ones(full["input_ids"].shape[1], dtype=torch.bool)
    keep[span[0] : span[1]] = False
    short = {k: full[k][:, keep] for k in ("input_ids", "attention_mask", "mm_token_type_ids")}
    return {
        **short,
        "pixel_values": full["pixel_values"],
        "image_grid_thw": full["image_grid_thw"],
        "position_ids": positions[:, :, keep],
    }


class TrainingInputs:
    """HPSv3's model inputs for (image, prompt) pairs, real or short form, as :meth:`HPSv3.inputs` and
    :func:`short_inputs` build them but with each prompt's tokens and rotary positions computed once (the
    chat template and tokenizer dominate a short step otherwise; new prompts are tokenised a batch at a
    time). Every image must have the pixel size ``size`` (one vision grid, so every prompt's token columns
    and positions are the same whatever the image); the images themselves go through the reward's resize
    and image processor at every call."""

    def __init__(self, scorer: HPSv3, span: tuple[int, int], size: tuple[int, int]):
        self.scorer, self.span, self.size = scorer, span, size
        self.rows: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # prompt -> ids, mm, pos
        probe = resize_to_pixels(Image.new("RGB", size), scorer.cfg.image_pixels, scorer.factor)
        self.grid = scorer.processor.image_processor(images=[probe], return_tensors="pt")["image_grid_thw"][0]

    def _fill(self, prompts: list[str]) -> None:
        """Tokenise the prompts not seen yet in one batch (HPSv3's real input with a blank image of the
        training images' grid) and keep each one's unpadded ids, image-token flags and rotary positions."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self.rows))
        if not missing:
            return
        probe = Image.new("RGB", self.size)
        full = self.scorer.inputs([(probe, p) for p in missing])
        positions, _ = self.scorer.model.backbone.get_rope_index(
            full["input_ids"],
            mm_token_type_ids=full["mm_token_type_ids"],
            image_grid_thw=full["image_grid_thw"],
            attention_mask=full["attention_mask"],
        )
        for k, prompt in enumerate(missing):
            n = int(full["attention_mask"][k].sum())  # right padding
            self.rows[prompt] = (
                full["input_ids"][k, :n],
                full["mm_token_type_ids"][k, :n],
                positions[:, k, :n],
            )

    def __call__(self, pairs: list[tuple[Image.Image, str]], short: bool) -> dict[str, torch.Tensor]:
        self._fill([prompt for _, prompt in pairs])
        rows = [self.rows[prompt] for _, prompt in pairs]
        scorer = self.scorer
        images = [resize_to_pixels(image, scorer.cfg.image_pixels, scorer.factor) for image, _ in pairs]
        vision = scorer.processor.image_processor(images=images, return_tensors="pt")
        if not bool((vision["image_grid_thw"] == self.grid).all()):
            raise ValueError(f"TrainingInputs needs images of one size, {self.size} (one vision grid)")
        if short:  # the instruction's columns go, every other token keeps its real position
            a, b = self.span
            rows = [tuple(torch.cat([x[..., :a], x[..., b:]], dim=-1) for x in row) for row in rows]
        length = max(len(ids) for ids, _, _ in rows)
        pad = scorer.processor.tokenizer.pad_token_id
        ids = torch.full((len(rows), length), pad, dtype=torch.long)
        mask, mm = torch.zeros_like(ids), torch.zeros_like(ids)
        positions = torch.ones((3, len(rows), length), dtype=torch.long)
        for k, (row_ids, row_mm, row_pos) in enumerate(rows):
            ids[k, : len(row_ids)], mask[k, : len(row_ids)], mm[k, : len(row_ids)] = row_ids, 1, row_mm
            positions[:, k, : len(row_ids)] = row_pos
        out = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": mm, **vision}
        return out | {"position_ids": positions} if short else out


def training_renders(
    worlds: tuple[Path, ...], cfg: HPSv3TrainConfig, workers: int = 1
) -> PromptRenders | None:
    """The DreamBench-prompt renders the toy HPSv3 learns from: the toy SynCD subjects of ``worlds[0]``
    (and of the other worlds when ``cfg.render_corpus``), ``templates_per_subject`` templates each,
    without ``worlds[0]``'s ToyBench subjects; None without worlds or renders."""
    if not worlds or not sum(cfg.templates_per_subject):
        return None
    held_out = {subject.key for _, subject in toybench_subjects(worlds[0])}
    subjects, seen = [], set(held_out)
    for k, world in enumerate(worlds if cfg.render_corpus else worlds[:1]):
        for set_id, subject in syncd_subjects(world):
            if subject.key not in seen:  # one render group per identity, ToyBench's never
                seen.add(subject.key)
                subjects.append((f"{k}/{set_id}", subject))
    rng = np.random.default_rng([cfg.seed, 37])
    jobs = choose_templates(subjects, cfg.templates_per_subject, rng, cfg.subject_change_templates)
    return render_prompts(jobs, *world_render_size(worlds[0]), seed=(cfg.seed, 39), workers=workers)


def _pools(
    data: HPSv3Data, cfg: HPSv3TrainConfig, degradation: DegradationConfig
) -> tuple[Pool | None, Pool]:
    """(DreamBench-prompt renders, toy SynCD + corpus views) with their degraded copies."""
    rng = np.random.default_rng([cfg.seed, 13])
    views = data.views
    syncd = make_pool(
        views.images,
        views.captions,
        views.labels,
        [degrade_view(x, rng, degradation)[0] for x in views.images],
    )
    renders = training_renders(data.worlds, cfg, torch.get_num_threads())
    if renders is None:
        return None, syncd
    degraded = [degrade_view(x, rng, degradation)[0] for x in renders.images]
    attributes = render_attributes(renders.templates)
    return make_pool(renders.images, renders.prompts, renders.subjects, degraded, attributes), syncd


def scores_and_hidden(
    model: HPSv3Model, inputs: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu [B], the language model's last hidden states [B, L, H]): :class:`HPSv3Model`'s forward, the
    hidden states kept for the captioning loss."""
    hidden = model.backbone(**inputs).last_hidden_state
    at = inputs["input_ids"] == model.reward_token_id
    if not bool((at.sum(1) == 1).all()):
        raise ValueError("every sequence needs exactly one reward token")
    return model.head(hidden[at].float())[:, 0], hidden


def caption_loss(
    model: HPSv3Model, hidden: torch.Tensor, inputs: dict[str, torch.Tensor], rows: torch.Tensor, start: int
) -> torch.Tensor:
    """Next-token cross-entropy of the text from column ``start`` on (the prompt, then the reward suffix) in
    the sequences ``rows``, read through the tied input embeddings (Qwen2-VL's language-model head): the
    base VLM's own captioning objective, on images shown with their own prompt."""
    ids, mask = inputs["input_ids"][rows, start:], inputs["attention_mask"][rows, start:].bool()
    logits = hidden[rows, start - 1 : -1] @ model.backbone.language_model.embed_tokens.weight.T
    return F.cross_entropy(logits[mask].float(), ids[mask])


class VisionHeads(torch.nn.Module):
    """Linear heads on an image's mean merged vision token (what the language model reads of it), one per
    label of ``targets`` (VISION_TARGETS): a training aid of the vision phase, not saved."""

    def __init__(self, hidden: int, targets: tuple[str, ...]):
        super().__init__()
        sizes = dict(zip(VISION_TARGETS, [2, *(len(names) for names in ATTRIBUTES)], strict=True))
        self.columns = [VISION_TARGETS.index(t) for t in targets]
        self.sizes = [sizes[t] for t in targets]
        self.linear = torch.nn.Linear(hidden, sum(self.sizes))

    def loss(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Sum over the heads of the cross-entropy of pooled ``tokens`` [B, T, H] against their column of
        ``labels`` [B, 4] (VISION_TARGETS order; -1: no label, left out)."""
        logits = torch.split(self.linear(tokens.mean(1).float()), self.sizes, dim=-1)
        losses = [
            F.cross_entropy(head, labels[:, column], ignore_index=-1)
            for head, column in zip(logits, self.columns, strict=True)
            if bool((labels[:, column] >= 0).any())
        ]
        return torch.stack(losses).sum()


def vision_batch(
    pools: tuple[Pool | None, Pool], size: int, rng: np.random.Generator
) -> tuple[list[Image.Image], torch.Tensor]:
    """``size`` images of the vision phase and their labels [B, 4] (VISION_TARGETS order): alternately
    from the renders and the SynCD views (views only without renders), each the clean image or its
    degraded copy with even odds. A degraded render keeps its ATTRIBUTES; a view has none (-1)."""
    images, labels = [], []
    for k in range(size):
        pool = pools[1] if pools[0] is None or k % 2 else pools[0]
        i, degraded = int(rng.integers(len(pool))), bool(rng.random() < 0.5)
        images.append(pool.degraded[i] if degraded else pool.images[i])
        labels.append([int(degraded), *pool.attributes[i]])
    return images, torch.tensor(labels)


def train_vision(
    scorer: HPSv3,
    pools: tuple[Pool | None, Pool],
    cfg: HPSv3TrainConfig,
    rng: np.random.Generator,
    progress: bool = True,
) -> Curve:
    """The vision phase of ``cfg.vision`` (HPSv3VisionConfig): its ``steps`` of the vision tower alone,
    with :class:`VisionHeads` on its ``targets``; returns the (step, loss) curve. HPSv3's Qwen2-VL tower comes
    pretrained and sees scenes, worn items and damage; the toy tower, trained on preferences alone, does
    not learn blur or blocking under noise, nor accessories (benchmarks/probe_hpsv3_vision.py)."""
    phase = cfg.vision
    if phase is None:
        raise ValueError("train_vision needs HPSv3TrainConfig.vision (the vision phase's settings)")
    visual, heads = scorer.model.backbone.visual, VisionHeads(cfg.hidden, phase.targets)
    parameters = [*visual.parameters(), *heads.parameters()]
    # a constant rate: the degradation is learnt late (~600 steps in 800), after a decay would have slowed it
    optimizer, schedule = adamw(parameters, cfg.learning_rate, cfg.weight_decay)
    processor, curve = scorer.processor.image_processor, []
    for step in tqdm(range(phase.steps), desc="toy hpsv3 vision", disable=not progress):
        images, labels = vision_batch(pools, phase.batch, rng)
        resized = [resize_to_pixels(image, cfg.image_pixels, scorer.factor) for image in images]
        pixels = processor(images=resized, return_tensors="pt")
        merged = visual(pixels["pixel_values"], grid_thw=pixels["image_grid_thw"]).pooler_output
        loss = heads.loss(merged.reshape(len(images), -1, merged.shape[-1]), labels)
        optimizer_step(optimizer, schedule, loss, parameters, cfg.max_grad_norm)
        curve.append((step, float(loss.detach())))
    return curve


def bradley_terry(mu: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean ``-log sigmoid(mu_winner - mu_loser)`` over the preferences ``pairs`` [M, 2] of scores ``mu``."""
    return -F.logsigmoid(mu[pairs[:, 0]] - mu[pairs[:, 1]]).mean()


def train_hpsv3(
    data: HPSv3Data,
    cfg: HPSv3TrainConfig,
    degradation: DegradationConfig,
    folder: str | Path,
    progress: bool = True,
) -> Curve:
    """Build, train (Bradley-Terry on mu) and save the toy HPSv3 in ``folder``; returns the (step, loss)
    curve: the vision phase's steps (``vision``; its tower then frozen if it says so), ``short_steps`` on
    the short form, then ``steps`` on HPSv3's real input."""
    corpus = world_corpus(list(data.views.captions))
    reward_cfg = hpsv3_config(build_hpsv3(folder, cfg, corpus), cfg.image_pixels)
    model, processor = load_hpsv3_model(reward_cfg)
    scorer = HPSv3(model, processor, reward_cfg, "cpu")
    pools = _pools(data, cfg, degradation)
    curve: Curve = []
    model.train()
    if cfg.vision is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # the heads' initialisation
            curve = train_vision(scorer, pools, cfg, np.random.default_rng([cfg.seed, 43]), progress)
        model.backbone.visual.requires_grad_(not cfg.vision.freeze)
    parameters = [p for p in model.parameters() if p.requires_grad]
    rng = np.random.default_rng([cfg.seed, 41])
    total = cfg.short_steps + cfg.steps
    # Warm-up + cosine over the short phase, then again (a restart) over the real-input phase.
    spans = [(cfg.short_steps, cfg.warmup_steps), (cfg.steps, min(cfg.warmup_steps, cfg.steps // 4))]
    optimizer, schedule = adamw(parameters, cfg.learning_rate, cfg.weight_decay, phases(spans))
    span = instruction_span(scorer)
    inputs_of = TrainingInputs(scorer, span, pools[1].images[0].size)
    first = len(curve)  # the preference steps follow the vision phase's
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the head's dropout
        for step in tqdm(range(total), desc="toy hpsv3", disable=not progress):
            sequences, pairs = preference_step(pools, cfg, rng)
            short = step < cfg.short_steps
            inputs = inputs_of(sequences, short=short)
            mu, hidden = scores_and_hidden(model, inputs)
            loss = bradley_terry(mu, pairs)
            if cfg.caption_weight:  # the prompt starts after "Textual prompt - " (short form: no instruction)
                start = (span[0] if short else span[1]) + SHORT_TAIL
                matched = torch.unique(pairs[:, 0])  # every winner is an image with its own prompt
                loss = loss + cfg.caption_weight * caption_loss(model, hidden, inputs, matched, start)
            optimizer_step(optimizer, schedule, loss, parameters, cfg.max_grad_norm)
            curve.append((first + step, float(loss.detach())))
    model.eval()
    save_file(released_state(model), str(Path(folder) / WEIGHTS_FILE))
    return curve
