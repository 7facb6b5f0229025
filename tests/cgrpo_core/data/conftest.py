"""Fixtures of the data tests: a small toy world (built once per session) and the DreamBench folder."""

from __future__ import annotations

import pytest

from cgrpo_core.data.config import ToyWorldConfig
from cgrpo_core.data.toyworld.generate import generate_toy_world
from tests.conftest import SHARED

# Default resolution and supersampling, fewer sets: the planted-defect shares are those of the default world.
SMALL_WORLD = ToyWorldConfig(syncd_sets=60, bench_images=2)


@pytest.fixture(scope="session")
def toy_world(session_dir):
    out = session_dir / "toy_world"
    generate_toy_world(SMALL_WORLD, out, progress=False)
    return out


@pytest.fixture(scope="session")
def dreambench_root():
    """A user's DreamBench download (dreambooth's dataset/ folder); ../shared/dreambench stands in for it."""
    root = SHARED / "dreambench" / "dataset"
    if not root.is_dir():
        pytest.skip(f"DreamBench not found at {root}")
    return root
