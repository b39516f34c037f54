"""`newsflow report` end to end: the pipeline over a few samples, then the command as a user
types it, then the HTML file in a real browser (Debian's Chromium, headless, driven by
Playwright) with every request outside the file refused: the page draws its four charts
from the data inlined in it, and nothing leaves it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SAMPLES, run_pipeline
from tests.integration.test_cli import newsflow

pytestmark = pytest.mark.slow

# Several outlets and days (and documents without a date or an outlet), with entities
# shared across articles: China, the European Union, the United States.
SAMPLE_FILES = [
    "china_africa_rail_deal_debt.json",
    "eu_china_trade_talks_stall.md",
    "economy_briefs_imf_germany_us_india.csv",
    "russia_blocks_black_sea_grain_deal.html",
    "imf_warns_brazil_debt.txt",
]
CHARTS = ("chart-documents", "chart-sentiment", "chart-stance", "chart-stories")
TRACES = """ids => Object.fromEntries(ids.map(id => {
    const div = document.getElementById(id);
    return [id, (div && div.data || []).map(t => ({name: t.name, x: Array.from(t.x || []), y: Array.from(t.y || [])}))];
}))"""


@pytest.fixture(scope="module")
def api_url(prefect_harness) -> str:
    """The session's Prefect server, for the CLI process (it would otherwise boot its own)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


@pytest.fixture(scope="module")
def output_root(prefect_harness, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-run") / "out"
    record = run_pipeline([SAMPLES / name for name in SAMPLE_FILES], root)
    assert record["status"] == "completed" and record["n_kept"] >= 5
    return root


def kept_documents(root: Path) -> int:
    """The documents the report counts, read independently: one per group of copies."""
    documents = pd.read_parquet(root / "documents", columns=["doc_id", "duplicate_group"])
    return documents["duplicate_group"].fillna(documents["doc_id"]).nunique()


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("NEWSFLOW_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_every_chart_offline(output_root, api_url, tmp_path):
    from playwright.sync_api import sync_playwright
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    html = tmp_path / "site" / "coverage.html"
    result = newsflow("report", "--output", str(output_root), "--html", str(html), cwd=tmp_path, api_url=api_url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(html.resolve())
    text = html.read_text(encoding="utf-8")
    assert "<script src" not in text, "plotly.js is inlined, not fetched"

    with SyncPrefectClient(api_url) as client:  # the two artifacts, under their stable keys
        keys = ArtifactFilter(key=ArtifactFilterKey(any_=["newsflow-coverage-report", "newsflow-coverage-summary"]))
        artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=keys)}
    assert f"({html.resolve().as_uri()})" in artifacts["newsflow-coverage-report"].data  # a link artifact: Markdown [text](link)
    assert f"| {kept_documents(output_root)} |" in artifacts["newsflow-coverage-summary"].data

    requests: list[str] = []

    def only_the_file(route) -> None:
        requests.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            env={**os.environ, "HOME": str(tmp_path)},
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", only_the_file)
            page.on("request", lambda request: requests.append(request.url))  # also what a route might not see
            page.goto(html.resolve().as_uri())
            page.wait_for_function("ids => ids.every(id => { const d = document.getElementById(id); return d && d._fullLayout; })", arg=list(CHARTS))
            assert page.title() == "newsflow coverage report"
            traces = page.evaluate(TRACES, list(CHARTS))
            drawn = page.evaluate("ids => ids.map(id => document.querySelectorAll(`#${id} .main-svg`).length)", list(CHARTS))
            shot = screenshot_dir(tmp_path) / "coverage-report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert [url for url in requests if not url.startswith("file://")] == [], "the page asked for something beyond its own file"
    assert all(drawn), f"plotly drew no SVG in {dict(zip(CHARTS, drawn))}"
    for chart in CHARTS:
        assert any(len(t["x"]) and len(t["y"]) for t in traces[chart]), f"{chart} has no data points"
    assert sum(sum(t["y"]) for t in traces["chart-documents"]) == kept_documents(output_root)
    sentiment_total = sum(sum(t["y"]) for t in traces["chart-sentiment"])
    assert sentiment_total == kept_documents(output_root)
    assert {t["name"] for t in traces["chart-sentiment"]} == {"negative", "neutral", "positive"}
    assert shot.exists() and shot.stat().st_size > 50_000


def test_report_of_an_unknown_run_exits_1(output_root, tmp_path):
    html = tmp_path / "nope.html"
    result = newsflow("report", "no-such-run", "--output", str(output_root), "--html", str(html), cwd=tmp_path)
    assert result.returncode == 1 and "no run matching 'no-such-run'" in result.stderr
    assert not html.exists()
