"""Shared test setup: offline, telemetry off, and Prefect's state in a throwaway folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before prefect is imported anywhere: a private PREFECT_HOME keeps persisted state from
# leaking between sessions, and nothing may reach past loopback.
_PREFECT_HOME = tempfile.mkdtemp(prefix="newsflow-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.pop("PREFECT_API_URL", None)

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "data" / "samples"
SEEDS = REPO_ROOT.parent / "shared" / "seeds"
NEWSMTSC = REPO_ROOT.parent / "shared" / "data" / "newsmtsc"


def run_pipeline(inputs: list[str | Path] | str | Path, output: Path, **overrides) -> dict:
    """The `news-pipeline` flow in this process (under `prefect_harness`) over `inputs` into
    `output`, with further config overrides by dotted key; returns its run record."""
    from flows.pipeline import news_pipeline

    paths = [str(p) for p in inputs] if isinstance(inputs, list) else [str(inputs)]
    return news_pipeline(overrides={"input.paths": paths, "output.root": str(output), **overrides})


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the session (about 8 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny random BART / BERT classifier / BERT NLI models saved in a temporary folder."""
    from tests.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def site():
    """A real HTTP server on 127.0.0.1 that serves the routes a test declares (tests/loopback.py)."""
    from tests.loopback import LoopbackSite

    with LoopbackSite() as running:
        yield running
