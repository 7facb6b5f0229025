"""DreamBench (and ToyBench, written in the same layout): the 750 evaluation items.

DreamBench (Ruiz et al., 2023) is a folder per subject holding 4-6 photos, plus ``prompts_and_classes.txt``
with the subject -> class table and two prompt lists written as Python ``'a {0} {1} ...'.format(unique_token,
class_token)`` lines: 25 object prompts (20 recontextualisation + 5 property changes) and 25 live-subject
prompts (10 recontextualisation + 10 accessories + 5 property changes) for the cats and dogs.

Protocol (the authors' ``dreambench_singleip.json``): subjects in file order, each subject's prompts in list
order, the prompt written without the unique token ("a dog in the snow"), one reference image per subject.
The reference is named by the protocol file; without one we take the subject's first image in sorted
order. Prompt kinds are derived from the lists: a modifier before the subject is a property change, a live
prompt absent from the object list is an accessory, the rest are recontextualisations.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = [
    "IMAGE_SUFFIXES",
    "REPO_DATA",
    "bench_files",
    "PromptTable",
    "format_prompt",
    "parse_prompts_and_classes",
    "prompt_kind",
    "protocol_references",
    "read_dreambench",
    "subject_images",
    "write_prompts_and_classes",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
REPO_DATA = Path(__file__).resolve().parents[2] / "data"  # small static data kept in git
_TEMPLATE = re.compile(r"""^\s*(['"])(.*)\1\s*\.format\(\s*unique_token\s*,\s*class_token\s*\)\s*,?\s*$""")
_SECTIONS = ("Classes", "Prompts", "Object Prompts", "Live Subject Prompts")
DOWNLOAD_HINT = (
    "download DreamBench with `git clone https://github.com/google/dreambooth` and point "
    "dreambench.root at its dataset/ folder (see docs/data.md)"
)


@dataclass(frozen=True)
class PromptTable:
    """The content of ``prompts_and_classes.txt``: subject -> class, and the two template lists."""

    classes: dict[str, str]
    object_templates: tuple[str, ...]
    live_templates: tuple[str, ...]


def _split_sections(lines: list[str], path: Path) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if line.strip() in _SECTIONS:
            current = line.strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    missing = [s for s in ("Classes", "Object Prompts", "Live Subject Prompts") if s not in sections]
    if missing:
        raise ValueError(
            f"{path}: malformed prompts file, missing section(s) {missing} (expected {_SECTIONS})"
        )
    return sections


def _templates(lines: list[str], path: Path, section: str) -> tuple[str, ...]:
    out = []
    for line in lines:
        match = _TEMPLATE.match(line)
        if match:
            template = match.group(2)
            if "{0}" not in template or "{1}" not in template:
                raise ValueError(
                    f"{path}: prompt {template!r} in {section!r} lacks the {{0}} {{1}} placeholders"
                )
            out.append(template)
    if not out:
        raise ValueError(
            f"{path}: malformed prompts file, no 'a {{0}} {{1}} ...'.format(...) line in {section!r}"
        )
    return tuple(out)


def parse_prompts_and_classes(path: str | Path) -> PromptTable:
    """Parse DreamBench's ``prompts_and_classes.txt``; a malformed file is an error naming file and reason."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prompts file not found; {DOWNLOAD_HINT}")
    sections = _split_sections(path.read_text(encoding="utf-8").splitlines(), path)
    classes: dict[str, str] = {}
    for line in sections["Classes"]:
        line = line.strip()
        if not line or line == "subject_name,class":
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}: malformed class line {line!r}; expected 'subject_name,class'")
        if parts[0] in classes:
            raise ValueError(f"{path}: subject {parts[0]!r} listed twice")
        classes[parts[0]] = parts[1]
    if not classes:
        raise ValueError(f"{path}: malformed prompts file, no 'subject_name,class' lines")
    return PromptTable(
        classes,
        _templates(sections["Object Prompts"], path, "Object Prompts"),
        _templates(sections["Live Subject Prompts"], path, "Live Subject Prompts"),
    )


def write_prompts_and_classes(table: PromptTable) -> str:
    """The text of a ``prompts_and_classes.txt`` in DreamBench's layout (inverse of the parser)."""
    lines = [
        "Classes",
        "",
        "subject_name,class",
        *[f"{s},{c}" for s, c in table.classes.items()],
        "",
        "Prompts",
    ]
    for title, templates in (
        ("Object Prompts", table.object_templates),
        ("Live Subject Prompts", table.live_templates),
    ):
        lines += ["", title, "", "prompt_list = ["]
        lines += [f"'{t}'.format(unique_token, class_token)," for t in templates[:-1]]
        lines += [f"'{templates[-1]}'.format(unique_token, class_token)", "]"]
    return "\n".join(lines) + "\n"


def format_prompt(template: str, class_name: str, unique_token: str = "") -> str:
    """``'a {0} {1} in the snow'`` -> ``'a dog in the snow'`` (no unique token, single spaces)."""
    return " ".join(template.format(unique_token, class_name).split())


def prompt_kind(template: str, object_templates: tuple[str, ...]) -> str:
    """recontextualization, accessorization or property (see the module docstring)."""
    if template.split("{0}")[0].strip() not in ("a", "an", ""):
        return "property"
    return "recontextualization" if template in object_templates else "accessorization"


def subject_images(root: str | Path, subject: str) -> list[str]:
    """The subject's images as sorted ``"<subject>/<file>"`` paths (sub-folders such as masks/ ignored)."""
    folder = Path(root) / subject
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: subject folder missing; {DOWNLOAD_HINT}")
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no image ({', '.join(IMAGE_SUFFIXES)}) in the subject folder")
    return [f"{subject}/{name}" for name in files]


def protocol_references(path: str | Path) -> dict[str, str]:
    """Subject -> reference image file name, from a protocol file in the authors' singleip format."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the protocol file ({err})") from err
    refs: dict[str, str] = {}
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        paths = entry.get("image_paths") if isinstance(entry, dict) else None
        if not paths or not isinstance(paths, list):
            raise ValueError(f"{path}: entry {i} has no 'image_paths' list")
        subject, name = Path(paths[0]).parts[-2:]
        if refs.setdefault(subject, name) != name:
            raise ValueError(
                f"{path}: subject {subject!r} has two reference images ({refs[subject]}, {name})"
            )
    if not refs:
        raise ValueError(f"{path}: expected a JSON list of {{'prompt', 'image_paths'}} entries")
    return refs


def read_dreambench(
    root: str | Path,
    prompts_file: str | Path,
    protocol_file: str | Path | None = None,
    live_classes: tuple[str, ...] = ("cat", "dog"),
) -> pd.DataFrame:
    """The evaluation items, one row per (subject, prompt), in the authors' protocol order.

    Columns: subject, class_name, live (bool), prompt_index (0-24), prompt_kind, prompt, reference_image
    (``"<subject>/<file>"`` under ``root``), num_subject_images.
    """
    table = parse_prompts_and_classes(prompts_file)
    refs = protocol_references(protocol_file) if protocol_file is not None else {}
    rows = []
    for subject, class_name in table.classes.items():
        images = subject_images(root, subject)
        if refs:
            if subject not in refs:
                raise ValueError(f"{protocol_file}: no reference image for subject {subject!r}")
            reference = f"{subject}/{refs[subject]}"
            if reference not in images:
                raise FileNotFoundError(f"{Path(root) / reference}: reference image missing; {DOWNLOAD_HINT}")
        else:
            reference = images[0]
        live = class_name in live_classes
        for index, template in enumerate(table.live_templates if live else table.object_templates):
            rows.append(
                {
                    "subject": subject,
                    "class_name": class_name,
                    "live": live,
                    "prompt_index": index,
                    "prompt_kind": prompt_kind(template, table.object_templates),
                    "prompt": format_prompt(template, class_name),
                    "reference_image": reference,
                    "num_subject_images": len(images),
                }
            )
    return pd.DataFrame(rows)


def bench_files(
    root: str | Path | None,
    prompts_file: str | Path | None,
    protocol_file: str | Path | None,
    toy_world: str | Path | None = None,
) -> tuple[Path, Path, Path]:
    """(images root, prompts file, protocol file) of DreamBench, or of the toy world's ToyBench when
    ``root`` is None. Defaults: the root's own prompts_and_classes.txt (else the repo's copy) and the
    authors' protocol (repo copy) for DreamBench, ToyBench's own protocol for ToyBench."""
    if root is None:
        if toy_world is None:
            raise ValueError("dreambench.root is None (ToyBench) but no toy world folder was given")
        root, default_protocol = (
            Path(toy_world) / "toybench" / "dataset",
            Path(toy_world) / "toybench" / "toybench_singleip.json",
        )
    else:
        default_protocol = REPO_DATA / "reference" / "dreambench_singleip.json"
    root = Path(root)
    if prompts_file is None:
        own = root / "prompts_and_classes.txt"
        prompts_file = own if own.is_file() else REPO_DATA / "dreambench" / "prompts_and_classes.txt"
    return root, Path(prompts_file), Path(protocol_file) if protocol_file is not None else default_protocol
