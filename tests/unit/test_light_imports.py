"""Commands that only read files start fast: `newsflow --help`, `runs`, `show` and a config
error import neither torch, transformers nor the encoder (seconds each), nor prefect (about
2 s). Each runs in a fresh process, which then lists what it had imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_runs import RUN_IDS, write_fake_runs

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "tasks.models.encoder")
PROBE = """
import json, sys
from flows.cli import main
sys.argv = ["newsflow", *json.loads(sys.argv[1])]
try:
    main()
    code = 0
except SystemExit as exit:
    code = exit.code
with open({report!r}, "w") as report:
    json.dump({{"code": code, "modules": sorted(sys.modules)}}, report)
"""


@pytest.fixture(scope="module")
def output_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake-output")
    write_fake_runs(root)
    return root


def imported_by(args: list[str], tmp_path: Path) -> tuple[int, list[str]]:
    """(exit code, modules imported) of `newsflow *args` in a fresh interpreter."""
    report = tmp_path / "modules.json"
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "PYTHONPATH": str(REPO_ROOT), "NEWSFLOW_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(report=str(report)), json.dumps(args)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert report.exists(), result.stderr[-2000:]
    data = json.loads(report.read_text())
    return data["code"], data["modules"]


def heavy(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == name or m.startswith(name + ".") for name in names)]


@pytest.mark.parametrize(
    "args, code",
    [
        (["--help"], 0),
        (["runs", "--output", "{root}"], 0),
        (["show", RUN_IDS[0][:8], "--output", "{root}"], 0),
        (["run", "--set", "nope.x=1"], 2),
    ],
    ids=["help", "runs", "show", "config-error"],
)
def test_reading_commands_import_no_models_and_no_prefect(args, code, output_root, tmp_path):
    exit_code, modules = imported_by([a.format(root=output_root) for a in args], tmp_path)
    assert exit_code == code
    assert "flows.cli" in modules and "tasks.config" in modules, "the probe ran the CLI"
    assert heavy(modules, HEAVY) == [], f"imported {heavy(modules, HEAVY)[:5]}: move the import into the command that needs it"
    assert heavy(modules, ("prefect",)) == [], "prefect (about 2 s to import) is for commands that run flows or ask a server"
