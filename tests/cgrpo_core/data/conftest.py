"""Fixtures of the data tests: the DreamBench folder (the small toy world is tests/conftest.py's)."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED


@pytest.fixture(scope="session")
def dreambench_root():
    """A user's DreamBench download (dreambooth's dataset/ folder); ../shared/dreambench stands in for it."""
    root = SHARED / "dreambench" / "dataset"
    if not root.is_dir():
        pytest.skip(f"DreamBench not found at {root}")
    return root
