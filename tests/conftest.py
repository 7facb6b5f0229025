"""Session-wide test settings: offline, headless, and every output in a temporary workspace.

Environment variables are set at import time, before any test module imports Hugging Face,
Prefect or MLflow, because those libraries read them once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="cgrpo-tests-"))
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "CGRPO_WORKSPACE": str(_SESSION_DIR / "workspace"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{_SESSION_DIR / 'mlflow.db'}",
    }
)
(_SESSION_DIR / "workspace").mkdir()

import pytest  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global torch seed."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


# Default resolution and supersampling, fewer sets: the planted-defect shares are those of the default world.
SMALL_WORLD_SETS, SMALL_WORLD_BENCH_IMAGES = 60, 2


@pytest.fixture(scope="session")
def toy_world(session_dir):
    """A small toy world (60 sets at the default 64 px), generated once per session."""
    from cgrpo_core.toy.world.config import ToyWorldConfig
    from cgrpo_core.toy.world.generate import generate_toy_world

    out = session_dir / "toy_world"
    config = ToyWorldConfig(syncd_sets=SMALL_WORLD_SETS, bench_images=SMALL_WORLD_BENCH_IMAGES)
    generate_toy_world(config, out, progress=False)
    return out


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (starting one costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def test_zoo(prefect_harness) -> dict[str, str]:
    """The test profile's toy zoo (``toy-zoo`` flow) in the session's workspace, built once: a test that
    needs a fresh workspace copies it there (:func:`seed_store`) instead of training it again."""
    from cgrpo_core.config import experiment_config
    from flows.zoo import toy_zoo

    return toy_zoo(experiment_config("test"))


def seed_store(workspace: Path, folders: list[str]) -> None:
    """Copy results of the session's store (complete folders) into ``workspace``'s store."""
    import shutil

    store = _SESSION_DIR / "workspace" / "outputs" / "store"
    for folder in folders:
        shutil.copytree(folder, workspace / "outputs" / "store" / Path(folder).relative_to(store))


@pytest.fixture(scope="session")
def mlflow_client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's temporary workspace (keep it with CGRPO_KEEP_TEST_DIR=1 to inspect)."""
    import shutil

    if not os.environ.get("CGRPO_KEEP_TEST_DIR"):
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)
