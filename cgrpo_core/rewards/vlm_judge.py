"""VLM judges (Table 6-7: Qwen-VL-Max, GPT-4o, Gemini-2.5-Pro as reward models) over an OpenAI-compatible
``/chat/completions`` API: a local vLLM server or a hosted one.

Two questions, each asking for one number in [score_min, score_max] (default 0-10) as JSON
``{"score": <number>}``:

- ``vlm_judge_id``: the reference image(s) of the subject, then the generated image; how faithfully
  does the generated image preserve the subject's identity (shape, colour, texture, details)?
- ``vlm_judge_prompt``: the generated image and its prompt; how well does it follow the prompt?

The paper does not publish its judge prompts ("carefully designed prompts", appendix C); these are ours.

Endpoint, model and key come from environment variables (names in :class:`VLMJudgeConfig`); the key is
sent as a bearer token and never logged or stored. Images go as base64 PNG data URLs, downscaled to
``image_max_side``. Each answer is cached on disk as one JSON file keyed by sha256 of (model, question
text, image hashes, sampling settings). Timeouts, transport errors, HTTP 429/5xx and answers without a
valid number are retried with exponential backoff; other HTTP errors fail at once. After the last
attempt :class:`VLMJudgeError` says what went wrong: a score is never invented.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import torch
from PIL import Image

from cgrpo_core.rewards.base import RewardBatch
from cgrpo_core.rewards.config import RewardModels, VLMJudgeConfig
from cgrpo_core.store import atomic_write_json, workspace

__all__ = [
    "QUESTIONS",
    "VLMJudge",
    "VLMJudgeError",
    "judge_identity",
    "load_identity_judge",
    "load_prompt_judge",
    "parse_score",
]

SYSTEM = 'You are a meticulous image evaluator. Answer only with JSON of the form {"score": <number>}.'
QUESTIONS = {
    "identity": (
        "The first {n_refs} image(s) show a reference subject (a {subject}). The last image was "
        "generated. Rate from {lo:g} to {hi:g} how faithfully the generated image preserves the identity "
        "of the reference subject: its shape, colours, textures and distinctive details ({lo:g}: a "
        "different subject, {hi:g}: the same subject). Ignore background, pose and lighting. "
        'Answer with JSON {{"score": <number>}}.'
    ),
    "prompt": (
        'Rate from {lo:g} to {hi:g} how well this generated image follows the text prompt "{prompt}": '
        "every requested object, attribute, context and style, and overall visual quality ({lo:g}: "
        'unrelated, {hi:g}: perfectly follows it). Answer with JSON {{"score": <number>}}.'
    ),
}
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_JSON_SCORE = re.compile(r"\{[^{}]*\"score\"[^{}]*\}", re.S)
_BARE_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*$")


class VLMJudgeError(RuntimeError):
    """The judge gave no valid score (after retries, or on a non-retryable HTTP error)."""


class _Retryable(Exception):
    pass


def parse_score(text: str, lo: float, hi: float) -> float:
    """The score in an answer: JSON ``{"score": x}`` (code fences allowed) or a bare number, in [lo, hi].

    Anything else (prose, several candidate numbers, out of range) raises ValueError.
    """
    found = _JSON_SCORE.search(text)
    if found:
        try:
            value = float(json.loads(found.group(0))["score"])
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"answer has a malformed score object: {found.group(0)!r}") from err
    elif _BARE_NUMBER.match(text):
        value = float(_BARE_NUMBER.match(text).group(1))
    else:
        raise ValueError(f"answer holds no score: {text[:200]!r}")
    if not lo <= value <= hi:
        raise ValueError(f"score {value} outside [{lo:g}, {hi:g}]")
    return value


def _data_url(image: Image.Image, max_side: int) -> str:
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BICUBIC,
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def judge_identity(cfg: VLMJudgeConfig) -> dict[str, str]:
    """Which judge answers: the model and the endpoint, resolved from the config and the environment. Part
    of a judge score's identity (a cache key), unlike the API key, which is never returned or logged."""
    base_url = os.environ.get(cfg.base_url_env)
    model = cfg.model or os.environ.get(cfg.model_env)
    if not base_url:
        raise VLMJudgeError(
            f"set ${cfg.base_url_env} to the VLM judge's API base URL (e.g. http://127.0.0.1:8000/v1)"
        )
    if not model:
        raise VLMJudgeError(f"set vlm.model in the config or ${cfg.model_env} to the judge's model name")
    return {"vlm_model": model, "vlm_base_url": base_url.rstrip("/")}


def _redact(text: str, cfg: VLMJudgeConfig) -> str:
    """``text`` with the API key's value blanked (a proxy may echo request headers in an error body)."""
    key = os.environ.get(cfg.api_key_env)
    return text.replace(key, "<redacted>") if key else text


class VLMJudge:
    """One question (``identity`` or ``prompt``) asked of a chat-completions VLM, one image at a time."""

    def __init__(
        self, name: str, question: str, cfg: VLMJudgeConfig, transport: httpx.BaseTransport | None = None
    ):
        if question not in QUESTIONS:
            raise ValueError(f"unknown question {question!r}; choose one of {sorted(QUESTIONS)}")
        self.name, self.question, self.cfg = name, question, cfg
        self.needs = frozenset({"references", "subjects"} if question == "identity" else {"prompts"})
        base_url = os.environ.get(cfg.base_url_env)
        if not base_url:
            raise VLMJudgeError(
                f"{name}: set ${cfg.base_url_env} to the API base URL (e.g. http://127.0.0.1:8000/v1)"
            )
        self.model = cfg.model or os.environ.get(cfg.model_env)
        if not self.model:
            raise VLMJudgeError(
                f"{name}: set vlm.model in the config or ${cfg.model_env} to the judge's model name"
            )
        headers = (
            {"Authorization": f"Bearer {os.environ[cfg.api_key_env]}"}
            if os.environ.get(cfg.api_key_env)
            else {}
        )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.client = httpx.Client(headers=headers, timeout=httpx.Timeout(cfg.timeout_s), transport=transport)
        self.cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else workspace() / "cache" / "vlm_judge"

    def request(self, text: str, images: list[Image.Image]) -> dict:
        """The chat-completions request body for one question."""
        content = [
            {"type": "image_url", "image_url": {"url": _data_url(im, self.cfg.image_max_side)}}
            for im in images
        ]
        return {
            "model": self.model,
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": [*content, {"type": "text", "text": text}]},
            ],
        }

    def _once(self, body: dict) -> float:
        try:
            response = self.client.post(self.url, json=body)
        except (httpx.TimeoutException, httpx.TransportError) as err:
            raise _Retryable(_redact(f"{type(err).__name__}: {err}", self.cfg)) from err
        if response.status_code in RETRY_STATUS:
            raise _Retryable(f"HTTP {response.status_code}: {_redact(response.text, self.cfg)[:200]}")
        if response.status_code >= 400:
            raise VLMJudgeError(
                f"{self.name}: HTTP {response.status_code} from {self.url}: "
                f"{_redact(response.text, self.cfg)[:300]}"
            )
        try:
            answer = response.json()["choices"][0]["message"]["content"]
            return parse_score(
                answer if isinstance(answer, str) else json.dumps(answer),
                self.cfg.score_min,
                self.cfg.score_max,
            )
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise _Retryable(f"malformed answer: {err}") from err

    def ask(self, text: str, images: list[Image.Image]) -> float:
        """The score for one question, from the cache or the API (with retries)."""
        body = self.request(text, images)
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        cached = self.cache_dir / f"{key[:2]}/{key}.json"
        if cached.is_file():
            return float(json.loads(cached.read_text())["score"])
        errors = []
        for attempt in range(self.cfg.max_attempts):
            try:
                score = self._once(body)
            except _Retryable as err:
                errors.append(str(err))
                if attempt + 1 < self.cfg.max_attempts:
                    time.sleep(self.cfg.backoff_s * 2**attempt)
                continue
            atomic_write_json(cached, {"model": self.model, "question": self.question, "score": score})
            return score
        raise VLMJudgeError(
            f"{self.name}: no valid score after {self.cfg.max_attempts} attempts; "
            f"errors: {' | '.join(errors)}"
        )

    def _item(self, batch: RewardBatch, i: int) -> tuple[str, list[Image.Image]]:
        lo, hi = self.cfg.score_min, self.cfg.score_max
        if self.question == "identity":
            refs = list(batch.references[i])
            text = QUESTIONS["identity"].format(n_refs=len(refs), subject=batch.subjects[i], lo=lo, hi=hi)
            return text, [*refs, batch.images[i]]
        return QUESTIONS["prompt"].format(prompt=batch.prompts[i], lo=lo, hi=hi), [batch.images[i]]

    def __call__(self, batch: RewardBatch) -> torch.Tensor:
        """Scores [N] (float32), asked ``max_concurrency`` at a time."""
        batch.require(self.name, self.needs)
        items = [self._item(batch, i) for i in range(len(batch))]
        with ThreadPoolExecutor(self.cfg.max_concurrency) as pool:
            scores = list(pool.map(lambda item: self.ask(*item), items))
        return torch.tensor(scores, dtype=torch.float32)


def load_identity_judge(models: RewardModels, device: str = "cpu", cache: dict | None = None) -> VLMJudge:
    """The ``vlm_judge_id`` reward (``models.vlm``)."""
    return VLMJudge("vlm_judge_id", "identity", models.vlm)


def load_prompt_judge(models: RewardModels, device: str = "cpu", cache: dict | None = None) -> VLMJudge:
    """The ``vlm_judge_prompt`` reward (``models.vlm``)."""
    return VLMJudge("vlm_judge_prompt", "prompt", models.vlm)
