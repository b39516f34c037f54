"""Output a script can use: piped, the listings are tab-separated lines under a header row
with every value whole; `--json` parses; in a terminal, however narrow, an id is never cut.
The run records are written directly (tests/fake_runs.py): no pipeline runs here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_runs import RUN_IDS, write_fake_runs

REPO_ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RUNS_HEADER = ["run_id", "flow_run_name", "deployment", "status", "started_at", "duration_s", "n_kept", "n_rejected"]


@pytest.fixture(scope="module")
def output_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake-output")
    write_fake_runs(root)
    return root


def newsflow(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    """The CLI in its own process, stdout a pipe (not a terminal), no Prefect server anywhere."""
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "PYTHONPATH": str(REPO_ROOT), "NEWSFLOW_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def tsv(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def test_runs_piped_is_tsv_with_a_header_and_whole_ids(output_root, tmp_path):
    result = newsflow("runs", "--output", str(output_root), cwd=tmp_path, home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    header, *rows = tsv(result.stdout)
    assert header == RUNS_HEADER
    assert [row[0] for row in rows] == [RUN_IDS[1], RUN_IDS[0]], "newest first, each id all 36 characters"
    assert all(len(row) == len(header) for row in rows)
    assert rows[0][1] == "fake-run-1" and rows[0][3] == "completed" and rows[0][4] == "2026-01-02T03:05:05+00:00"
    assert "…" not in result.stdout and "┃" not in result.stdout


def test_a_run_id_from_runs_pastes_into_show(output_root, tmp_path):
    listed = newsflow("runs", "--output", str(output_root), cwd=tmp_path, home=tmp_path)
    run_id = tsv(listed.stdout)[1][0]
    shown = newsflow("show", run_id, "--output", str(output_root), cwd=tmp_path, home=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"# newsflow run `{run_id}`" in shown.stdout
    documents = shown.stdout.split("\n\n")[-1]  # the report (Markdown text), then the documents as TSV
    header, *rows = tsv(documents)
    assert header == ["title", "sentiment", "top_stances", "summary"]
    assert rows[0] == ["A title with a tab and a line break", "negative", "favor United Nations (0.90)", "One summary sentence."]


def test_json_parses_for_runs_show_and_server_status(output_root, tmp_path):
    runs = json.loads(newsflow("runs", "--output", str(output_root), "--json", cwd=tmp_path, home=tmp_path).stdout)
    assert [r["run_id"] for r in runs] == [RUN_IDS[1], RUN_IDS[0]] and runs[0]["n_kept"] == 2
    shown = json.loads(newsflow("show", RUN_IDS[0][:8], "--output", str(output_root), "--json", cwd=tmp_path, home=tmp_path).stdout)
    assert shown["run"]["run_id"] == RUN_IDS[0] and len(shown["documents"]) == 2
    status = newsflow("server", "status", "--json", cwd=tmp_path, home=tmp_path)
    assert status.returncode == 3 and json.loads(status.stdout) == {"running": False}


def test_an_empty_output_root_is_a_header_and_a_message(tmp_path):
    result = newsflow("runs", "--output", str(tmp_path / "nothing"), cwd=tmp_path, home=tmp_path)
    assert result.returncode == 0 and result.stdout.splitlines() == ["\t".join(RUNS_HEADER)]
    assert "no runs recorded" in result.stderr
    assert json.loads(newsflow("runs", "--output", str(tmp_path / "nothing"), "--json", cwd=tmp_path, home=tmp_path).stdout) == []


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_in_a_terminal_no_id_is_cut_at_any_width(output_root, monkeypatch, capsys, width):
    """A table when the terminal holds every id whole and every other column's longest word;
    narrower, one line per value. Never an ellipsis, never an id broken across lines."""
    from flows import cli

    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", str(width))
    with pytest.raises(SystemExit) as exit:
        monkeypatch.setattr(sys, "argv", ["newsflow", "runs", "--output", str(output_root)])
        cli.main()
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert all(run_id in out for run_id in RUN_IDS), out  # each on one line
    is_table = "┃" in out
    assert is_table == (width >= 120), out
    if is_table:
        assert max(len(line) for line in out.splitlines()) <= width
    else:  # one soft-wrapped "header  value" line each, the terminal wraps what is longer
        assert f"run id         {RUN_IDS[0]}" in out.splitlines()


def test_show_in_a_narrow_terminal_cuts_nothing(output_root, monkeypatch, capsys):
    """The report's tables (its output files name the run id) fold long cells, never end them in an ellipsis."""
    from flows import cli

    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr(sys, "argv", ["newsflow", "show", RUN_IDS[0], "--output", str(output_root)])
    with pytest.raises(SystemExit) as exit:
        cli.main()
    out = capsys.readouterr().out
    assert exit.value.code == 0 and "…" not in out
    assert RUN_IDS[0] in out and "Second" in out  # the heading whole; the documents table follows


def test_metrics_piped_are_tsv_in_full_precision(monkeypatch, capsys):
    from flows import cli

    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: False)
    cli.print_metrics(
        {"task": "stance", "n": 3, "macro_f1": 0.123456, "accuracy": 0.5, "per_class": {"favor": {"precision": 1.0, "recall": 0.25, "f1": 0.4, "support": 4}}}
    )
    assert capsys.readouterr().out.splitlines() == [
        "class\tprecision\trecall\tf1\tsupport",
        "favor\t1.0\t0.25\t0.4\t4",
        "macro-F1\t\t\t0.123456\t",
        "accuracy\t\t\t0.5\t",
    ]


def test_reanalyze_flag_sets_the_config_key():
    from flows.cli import collect_overrides

    assert collect_overrides([], None, None, [], reanalyze=True) == {"run.reanalyze": True}
    assert "run.reanalyze" not in collect_overrides([], None, None, [])
