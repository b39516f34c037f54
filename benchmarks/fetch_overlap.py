"""Fetching speed, and whether fetching overlaps analysis (see benchmarks/README.md). Never part of the tests.

A loopback server (tests/loopback.py, 127.0.0.1 only) serves N article pages, each answered
after `--latency` seconds, and a sitemap listing them. Three rows:
- fetch: the polite client fetches every page, one request in flight (fetch.host_connections
  = 1, fetch.host_interval = 0), as a run's fetch batches do for one host: pages/s;
- analysis: `newsflow run` over the same pages saved as .html files (no fetching);
- fetch+analysis: `newsflow run -i <sitemap URL>`: listing, fetching and analysis in one run.
If fetching overlaps analysis, the last row's wall time is close to the larger of the first
two, not their sum. The pages are made by make_corpus.py (NewsMTSC sentences, see there).

    python benchmarks/fetch_overlap.py --docs 1000 --latency 0.05 --json benchmarks/results/fetch-overlap-1000.json
"""

from __future__ import annotations

import argparse
import html
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.config import FetchConfig  # noqa: E402
from tasks.web.http import PoliteClient  # noqa: E402
from tests.loopback import LoopbackSite  # noqa: E402


def html_page(text: str) -> str:
    """A corpus article as a plain news page: the headline line as <h1>, paragraphs as <p>."""
    headline, _, body = text.partition("\n")
    paragraphs = "".join(f"<p>{html.escape(p.strip())}</p>" for p in body.split("\n\n") if p.strip())
    return f"<html><head><title>{html.escape(headline)}</title></head><body><article><h1>{html.escape(headline)}</h1>{paragraphs}</article></body></html>"


def sitemap(urls: list[str]) -> str:
    entries = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return f"<?xml version='1.0' encoding='UTF-8'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{entries}</urlset>"


WEB_SETTINGS = ["fetch.allow_private=true", "fetch.host_interval=0", "fetch.host_connections=1"]


def newsflow_run(inputs: str, output: Path, prefect_home: Path) -> dict:
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
    command = [sys.executable, "-m", "flows.cli", "run", "--input", inputs, "--output", str(output), "--json"]
    for setting in WEB_SETTINGS:
        command += ["--set", setting]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"newsflow run failed:\n{done.stderr[-3000:]}")
    record = json.loads(done.stdout)
    return {"wall_s": round(wall, 1), "kept": record.get("n_kept"), "stage_seconds": record.get("stage_seconds")}


def fetch_all(urls: list[str]) -> dict:
    settings = FetchConfig(allow_private=True, host_interval=0.0, host_connections=1)
    started = time.perf_counter()
    with PoliteClient(settings) as client:
        sizes = [len(answer.body) for answer in map(client.get, urls) if hasattr(answer, "body")]
    seconds = time.perf_counter() - started
    return {"pages": len(sizes), "seconds": round(seconds, 1), "pages_per_s": round(len(sizes) / seconds, 1), "mb": round(sum(sizes) / 2**20, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the server waits before each answer")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="newsflow-fetch-bench-"))
    corpus = work / "corpus"
    subprocess.run([sys.executable, str(REPO / "benchmarks/make_corpus.py"), "--docs", str(args.docs), "--out", str(corpus)], check=True)
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus.glob("part-*/*.txt"))][: args.docs]
    pages = work / "pages"
    pages.mkdir()
    with LoopbackSite(latency=args.latency) as site:
        urls = []
        for i, text in enumerate(texts):
            page = html_page(text)
            (pages / f"article-{i:05d}.html").write_text(page, encoding="utf-8")
            urls.append(site.route(f"/news/{i:05d}", page, headers={"Content-Type": "text/html; charset=utf-8"}))
        site.route("/sitemap.xml", sitemap(urls), headers={"Content-Type": "application/xml"})
        results: dict = {"docs": len(texts), "latency_s": args.latency, "cpus": os.cpu_count()}
        results["fetch"] = fetch_all(urls)
        print(json.dumps(results["fetch"]), flush=True)
        home = work / "prefect-home"
        results["analysis"] = newsflow_run(str(pages), work / "out-files", home)  # also warms the Prefect home
        print(json.dumps(results["analysis"]), flush=True)
        results["fetch_and_analysis"] = newsflow_run(site.url("/sitemap.xml"), work / "out-web", home)
    fetch_s, analysis_s, both_s = results["fetch"]["seconds"], results["analysis"]["wall_s"], results["fetch_and_analysis"]["wall_s"]
    results["sum_s"], results["max_s"] = round(fetch_s + analysis_s, 1), round(max(fetch_s, analysis_s), 1)
    results["overlap"] = round((fetch_s + analysis_s - both_s) / min(fetch_s, analysis_s), 2)  # 1.0: the shorter one is hidden entirely
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
