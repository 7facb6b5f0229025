"""The layers: cgrpo_core is the pure library (neither prefect nor mlflow, nor tasks or flows); tasks never
import flows (DESIGN.md)."""

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# package -> top-level modules it must not import
FORBIDDEN = {
    "cgrpo_core": ("prefect", "mlflow", "tasks", "flows"),
    "tasks": ("flows",),
}


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_import_statement(package):
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line} {name}"
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert offenders == []


def test_importing_every_cgrpo_core_module_loads_neither_prefect_nor_mlflow():
    modules = sorted(
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO_ROOT / "cgrpo_core").rglob("*.py")
    )
    forbidden = FORBIDDEN["cgrpo_core"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert out.stdout.strip() == "[]"


def test_importing_cgrpo_core_prints_no_warning():
    """No transformers "requires torchvision" line or any other warning a user cannot act on."""
    modules = sorted(
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO_ROOT / "cgrpo_core").rglob("*.py")
    )
    code = f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert "torchvision" not in out.stderr and "Warning" not in out.stderr, out.stderr
