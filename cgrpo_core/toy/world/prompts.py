"""Prompts of the toy world, in DreamBench's words, and what each asks the renderer to draw.

ToyBench uses DreamBench's own prompt templates (read from the repo's ``data/dreambench/
prompts_and_classes.txt``): every recontextualisation phrase has a background painter, every accessory
phrase a worn item, every property modifier ("red", "purple", "shiny", "wet", "cube shaped") a change of the
subject itself. So identity and prompt compete exactly where they do in DreamBench: "a purple dog" cannot
look like the brown reference dog.

Toy SynCD captions follow SynCD's style: the identity description (or just the class), a context phrase,
optionally a size word, a companion ("next to a ball"), a position ("on the left") and a style ("a cartoon
of ..."); an edited view uses the DreamBench template itself ("a dog wearing a red hat", "a purple dog").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cgrpo_core.data.dreambench import REPO_DATA, PromptTable, format_prompt, parse_prompts_and_classes
from cgrpo_core.toy.world.backgrounds import CONTEXTS
from cgrpo_core.toy.world.parts import ACCESSORIES
from cgrpo_core.toy.world.render import PROPERTIES

__all__ = ["DREAMBENCH_PROMPTS", "PromptSpec", "dreambench_templates", "spec_for_template", "syncd_caption"]

DREAMBENCH_PROMPTS = REPO_DATA / "dreambench" / "prompts_and_classes.txt"
_MARK = "\x00"  # stands for the class word while a template is split


@dataclass(frozen=True)
class PromptSpec:
    """What a DreamBench template asks for: its kind and the context / accessory / property to render."""

    kind: str  # recontextualization, accessorization, property
    context: str = "plain"  # painter name
    accessory: str | None = None
    prop: str | None = None


def dreambench_templates(path: str | Path = DREAMBENCH_PROMPTS) -> PromptTable:
    """DreamBench's prompt table (classes and the object / live template lists)."""
    return parse_prompts_and_classes(path)


def spec_for_template(template: str) -> PromptSpec:
    """``'a {0} {1} in the snow'`` -> context snow; ``'a purple {0} {1}'`` -> property purple; etc."""
    before, _, after = format_prompt(template, _MARK).partition(_MARK)
    modifier = before.strip().removeprefix("a").strip()
    after = after.strip()
    if modifier:
        if modifier not in PROPERTIES or after:
            raise ValueError(f"toy world cannot render the property prompt {template!r}")
        return PromptSpec("property", prop=modifier)
    if after in CONTEXTS:
        return PromptSpec("recontextualization", context=CONTEXTS[after])
    if after in ACCESSORIES:
        return PromptSpec("accessorization", accessory=after)
    raise ValueError(
        f"toy world has no renderer for the prompt {template!r}; "
        f"known phrases: {sorted(CONTEXTS) + sorted(ACCESSORIES)}"
    )


def syncd_caption(
    subject_words: str,
    context_phrase: str | None,
    size: str | None = None,
    companion: str | None = None,
    position: str | None = None,
    style: str = "photo",
) -> str:
    """A toy SynCD caption: ``"an orange round dog in the snow next to a ball, on the left"``."""
    words = f"{size} {subject_words}" if size else subject_words
    article = "an" if words[0] in "aeiou" else "a"
    text = f"{article} {words}" if style == "photo" else f"a cartoon drawing of {article} {words}"
    if context_phrase:
        text += f" {context_phrase}"
    if companion:
        text += f" next to a {companion}"
    if position:
        text += f", on the {position}"
    return text
