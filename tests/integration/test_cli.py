"""`newsflow run` as a user types it: a bad config stops before any work, a good run
exits 0 with its closing table, and a script can read its id from `newsflow runs` (piped:
tab-separated) and pass it to `newsflow show`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

NEWSFLOW = [sys.executable, "-m", "flows.cli"]


def newsflow(*args: str, cwd: Path, api_url: str | None = None) -> subprocess.CompletedProcess:
    """`newsflow ARGS` in a process of its own: against the Prefect API at `api_url` when
    given, else booting its own ephemeral server as a user's first run does."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **({"PREFECT_API_URL": api_url} if api_url else {})}
    return subprocess.run([*NEWSFLOW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_bad_config_value_stops_with_the_key_path(tmp_path):
    result = newsflow("run", "--set", "summary.sentences=0", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert "summary.sentences" in result.stderr and "greater than or equal to 1" in result.stderr
    assert not (tmp_path / "out").exists(), "nothing is written before the config is valid"


def test_unknown_key_in_a_config_file_is_named(tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text("[output]\nroot = 'x'\nformat = 'csv'\n")
    result = newsflow("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2 and "output.format: unknown key" in result.stderr


@pytest.mark.slow
def test_run_prints_the_closing_table_and_writes_parquet(tmp_path):
    inputs = [str(SAMPLES / "imf_warns_brazil_debt.txt"), str(SAMPLES / "imf_warns_brazil_debt_copy.txt"), str(SAMPLES / "fr_onu_accord_oceans.txt")]
    args = [a for path in inputs for a in ("--input", path)]
    result = newsflow("run", *args, "--output", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 kept, 2 rejected, 3 read" in result.stderr
    assert "duplicate" in result.stderr and "language" in result.stderr
    assert list((tmp_path / "out" / "documents").glob("run_date=*/*.parquet"))
    run_id = json.loads(result.stdout)["run_id"]
    assert len(run_id) == 36 and run_id in result.stderr, "the closing table shows the whole id"

    listed = newsflow("runs", "--output", str(tmp_path / "out"), cwd=tmp_path)
    header, row = (line.split("\t") for line in listed.stdout.splitlines())
    assert header[:4] == ["run_id", "flow_run_name", "deployment", "status"] and row[0] == run_id and row[3] == "completed"
    shown = newsflow("show", row[0], "--output", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    report = json.loads(shown.stdout)
    assert report["run"]["run_id"] == run_id and len(report["documents"]) == 1


@pytest.mark.parametrize("profile_url", ["http://127.0.0.1:9/api", None])
def test_run_uses_the_server_a_prefect_profile_names_instead_of_booting_one(tmp_path, profile_url):
    """A user whose Prefect profile points at a server gets that server, not an ephemeral
    one booted beside it; without one (and no newsflow server), the ephemeral API."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    if profile_url:
        (home / "profiles.toml").write_text(f'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "{profile_url}"\n')
    env = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        "PREFECT_HOME": str(home),
        "NEWSFLOW_HOME": str(tmp_path / "newsflow-home"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    probe = "from flows.server import use_running_server; print(use_running_server())"
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == str(profile_url)
