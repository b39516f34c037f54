"""A real Prefect server on a free loopback port: scheduled and triggered runs, and the UI
in a real browser (Debian's Chromium, headless, driven by Playwright). Every process the
tests start is stopped at the end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, SAMPLES

pytestmark = pytest.mark.slow
ONE_ARTICLE = str(SAMPLES / "imf_warns_brazil_debt.txt")


def newsflow_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "NEWSFLOW_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def newsflow(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """`newsflow server start` on a free port; `newsflow server stop` afterwards, whatever happens."""
    from flows.server import free_port

    home = tmp_path_factory.mktemp("newsflow-home")
    # A run that finds the deployment's one slot taken (the trigger, behind a scheduled run)
    # is offered it again after this many seconds, instead of Prefect's 30.
    env = {**newsflow_env(home), "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"}
    port = free_port()
    started = newsflow(env, "server", "start", "--port", str(port), timeout=150)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"UI:  http://127.0.0.1:{port}" in started.stdout
        yield home, f"http://127.0.0.1:{port}"
    finally:
        stopped = newsflow(env, "server", "stop", timeout=60)
        assert "stopped the Prefect server" in stopped.stdout
    assert newsflow(env, "server", "status").returncode == 3


def flow_runs(api_url: str, deployment: str | None = None) -> list:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with SyncPrefectClient(api_url) as client:
        filters = {"deployment_filter": DeploymentFilter(name=DeploymentFilterName(any_=[deployment]))} if deployment else {}
        return client.read_flow_runs(**filters)


@pytest.fixture(scope="module")
def run_against_server(live_server, tmp_path_factory):
    """One `newsflow run` of one article against the live server, for the tests that look at
    it from Prefect's API and from the UI (each run costs a process's start-up and models)."""
    home, _ = live_server
    output = tmp_path_factory.mktemp("run-against-server") / "out"
    return newsflow(newsflow_env(home), "run", "--input", ONE_ARTICLE, "--output", str(output)), output


def test_server_status_and_a_run_against_it(live_server, run_against_server):
    home, ui = live_server
    env = newsflow_env(home)
    status = newsflow(env, "server", "status")
    assert status.returncode == 0 and f"UI:  {ui}" in status.stdout
    result, output = run_against_server
    assert result.returncode == 0 and f"Prefect API: {ui}/api" in result.stderr
    run_id = pd.read_parquet(output / "runs").run_id.iloc[0]
    assert any(str(r.id) == run_id and r.state_name == "Completed" for r in flow_runs(f"{ui}/api"))


def test_a_served_schedule_runs_and_a_trigger_passes_its_overrides(live_server, tmp_path):
    home, ui = live_server
    env = newsflow_env(home)
    served_out, triggered_out = tmp_path / "served", tmp_path / "triggered"
    # Runs every 20 s (a run takes about that long here, one at a time per deployment, so the
    # trigger queues behind one at most); the runner polls every 2 s instead of 10.
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "serve",
            "--interval",
            "20",
            "--name",
            "e2e-every-20s",
            "--set",
            f'input.paths=["{ONE_ARTICLE}"]',
            "--set",
            f"output.root={served_out}",
        ],
        cwd=REPO_ROOT,
        env={**env, "PREFECT_RUNNER_POLL_FREQUENCY": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, completed = time.monotonic() + 180, []
        while time.monotonic() < deadline and not completed:
            time.sleep(3)
            completed = [r for r in flow_runs(f"{ui}/api", "e2e-every-20s") if r.state_name == "Completed"]
        assert completed, "no scheduled run completed within 180 s"
        records = pd.read_parquet(served_out / "runs")
        assert (records.deployment == "e2e-every-20s").all() and records.status.eq("completed").all()
        triggered = newsflow(env, "trigger", "e2e-every-20s", "--set", f"output.root={triggered_out}", "--set", "summary.sentences=1", "--wait")
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        documents = pd.read_parquet(triggered_out / "documents")
        assert documents.summary_sentences.map(len).eq(1).all()  # the trigger's override reached the flow
        parameters = json.loads(pd.read_parquet(triggered_out / "runs").parameters.iloc[0])
        assert parameters["overrides"]["input.paths"] == [str(ONE_ARTICLE)]  # the deployment's own overrides stay
    finally:
        stop_serving(serve)


def stop_serving(serve: subprocess.Popen) -> None:
    """SIGTERM to `newsflow serve`'s process group; SIGKILL if it has not ended 30 s later
    (on a loaded machine a flow run it started may still be importing)."""
    os.killpg(serve.pid, signal.SIGTERM)
    try:
        serve.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(serve.pid, signal.SIGKILL)
        serve.wait(timeout=30)


def run_report_id(api_url: str, run_id: str) -> str:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    with SyncPrefectClient(api_url) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["newsflow-run-report"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
        )
    assert len(artifacts) == 1
    return str(artifacts[0].id)


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_ui_shows_the_run_and_its_report(live_server, run_against_server, tmp_path):
    from playwright.sync_api import sync_playwright

    _, ui = live_server
    result, output = run_against_server
    assert result.returncode == 0, result.stderr[-2000:]
    record = pd.read_parquet(output / "runs").iloc[0]
    profile = tmp_path / "chromium-profile"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=shutil.which("chromium"),
            headless=True,
            viewport={"width": 1400, "height": 1000},
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
            env={**os.environ, "HOME": str(tmp_path)},
        )
        try:
            page = browser.new_page()
            page.goto(f"{ui}/runs/flow-run/{record.run_id}")
            page.get_by_text(record.flow_run_name).first.wait_for(timeout=60_000)
            page.get_by_text("Completed").first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "flow-run.png"), full_page=True)
            page.goto(f"{ui}/artifacts/key/newsflow-run-report")  # the key's history across runs lists this run
            page.get_by_text(record.flow_run_name).first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "run-report-history.png"), full_page=True)
            page.goto(f"{ui}/artifacts/artifact/{run_report_id(f'{ui}/api', record.run_id)}")
            page.get_by_text("Time per stage").first.wait_for(timeout=60_000)  # the report, rendered
            page.get_by_text(record.run_id).first.wait_for(timeout=30_000)  # its title names the run
            page.screenshot(path=str(tmp_path / "run-report.png"), full_page=True)
        finally:
            browser.close()
    assert all((tmp_path / f"{name}.png").stat().st_size > 10_000 for name in ("flow-run", "run-report-history", "run-report"))


def test_a_served_schedule_fetches_only_the_item_added_to_a_feed_between_runs(live_server, tmp_path):
    """`newsflow serve --interval` over a loopback feed: the first run takes the feed's two
    articles; an article added to the feed is the one thing the next run fetches."""
    from tests.loopback import LoopbackSite
    from tests.web_pages import rss, serve_articles

    home, ui = live_server
    out = tmp_path / "served-feed"
    with LoopbackSite() as site:
        serve_articles(site)
        headers = {"Content-Type": "application/rss+xml"}
        feed = site.route("/feed.xml", rss(site, ["harbour-dredging", "rail-strike"]), headers=headers, etag='"v1"')
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--interval", "10", "--name", "e2e-feed"]
            + ["--set", f'input.sources=[{{name = "ledger", url = "{feed}"}}]', "--set", "input.paths=[]", "--set", f"output.root={out}"]
            + ["--set", "fetch.allow_private=true", "--set", "fetch.host_interval=0"],
            cwd=REPO_ROOT,
            env={**newsflow_env(home), "PREFECT_RUNNER_POLL_FREQUENCY": "2"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:

            def completed_runs() -> int:
                return len([r for r in flow_runs(f"{ui}/api", "e2e-feed") if r.state_name == "Completed"])

            def wait_for(condition, seconds: float) -> bool:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline and not condition():
                    time.sleep(2)
                return condition()

            assert wait_for(lambda: completed_runs() >= 1, 180), "no scheduled run completed within 180 s"
            site.route("/feed.xml", rss(site, ["harbour-dredging", "rail-strike", "solar-farm"]), headers=headers, etag='"v2"')
            assert wait_for(lambda: committed_urls(out).str.endswith("/solar-farm").any(), 180), "no later run committed the new item within 180 s"
        finally:
            stop_serving(serve)
        assert (site.hits("/news/harbour-dredging"), site.hits("/news/rail-strike"), site.hits("/news/solar-farm")) == (1, 1, 1)
    fetched = pd.read_parquet(out / "fetched")
    assert sorted(fetched.url.str.rsplit("/", n=1).str[-1]) == ["harbour-dredging", "rail-strike", "solar-farm"]
    per_run = fetched.groupby("run_id").size()
    assert sorted(per_run) == [1, 2] and fetched[fetched.run_id == per_run.idxmin()].url.str.endswith("/solar-farm").all()  # a later run took it alone
    records = pd.read_parquet(out / "runs").set_index("run_id")
    assert (records.deployment == "e2e-feed").all() and records.loc[per_run.index, "status"].eq("completed").all()


def committed_urls(output: Path) -> pd.Series:
    """The URLs the runs under `output` have committed to `fetched` (none before the first commit)."""
    return pd.read_parquet(output / "fetched").url if (output / "fetched").exists() else pd.Series([], dtype=str)
