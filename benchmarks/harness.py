"""Throughput and memory harness: the whole `newsflow run` against the encoder alone, the
peer a user would write (sentence-transformers) and the naive loop, on one corpus, with
the machine's GEMM rate as the hardware limit. Prints a table and writes JSON.

    python benchmarks/harness.py --docs 1000                      # every row
    python benchmarks/harness.py --docs 10000 --rows pipeline     # memory at scale

Rows (each optional through --rows):
- pipeline: `newsflow run` in a subprocess, default config unless --config/--set; wall
  time, documents/s, sentences/s, task time per stage (from the run record), peak RSS
  of the process tree (the CLI plus Prefect's ephemeral server, sampled every 0.1 s)
  and the number of Prefect task runs (from the ephemeral server's database, kept in
  benchmarks/.prefect-home between harness runs as a user's ~/.prefect is).
- encoder: the pipeline's encoder alone over the same sentences and target mentions,
  with the pipeline's token-budget batching and precision (and its tuned stance head).
- peer: `SentenceTransformer(path).encode(sentences, batch_size=32)`, embedding only.
- naive: one transformers forward pass per sentence (fp32), over the first
  --naive-sentences sentences (a rate; the whole corpus would take too long).
- hardware: sustained GEMM rate (fp32 through torch.matmul and through oneDNN, bf16)
  and the encoder's FLOPs per document, hence the documents/s bound at the precision
  the pipeline used.

The sentences of the encoder, peer and naive rows are exactly those the pipeline wrote
to its `sentences` table, so the pipeline row runs first; every other row then runs in a
fresh process of its own. Never part of the tests."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pyarrow as pa
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.config import PipelineConfig, load_config, parse_override  # noqa: E402

# Each row runs in a fresh process: loading the pipeline's encoder sets its allocator
# policy (tasks/memory.configure_process_memory), which the peer and naive rows must not get.

ROWS = ("pipeline", "encoder", "peer", "naive", "hardware")


@dataclass
class Sentences:
    """The sentences the pipeline kept, in its order, with their documents."""

    doc_ids: list[str]
    texts: list[str]

    @property
    def n_docs(self) -> int:
        return len(set(self.doc_ids))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# ---- pipeline row -------------------------------------------------------------------


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants, now."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # exited between listing and reading
            pass
    return total


def watch_rss(process: psutil.Process, stop: threading.Event, peak: list[int], timeline: list[tuple[float, int, int]]) -> None:
    """peak = [process tree, the process alone], in bytes; a sample a second in `timeline`
    (seconds, tree MB, process MB), to see whether memory grows with the corpus."""
    started = time.perf_counter()
    while not stop.is_set():
        try:
            tree, alone = tree_rss(process), process.memory_info().rss
        except psutil.Error:
            return
        peak[0], peak[1] = max(peak[0], tree), max(peak[1], alone)
        elapsed = time.perf_counter() - started
        if not timeline or elapsed - timeline[-1][0] >= 1.0:
            timeline.append((round(elapsed, 1), tree // 2**20, alone // 2**20))
        stop.wait(0.1)


def count_task_runs(prefect_home: Path, flow_run_id: str) -> int | None:
    """Task runs of the flow run and of its subflow runs, read from the ephemeral server's
    SQLite database."""
    database = prefect_home / "prefect.db"
    if not database.exists():
        return None
    query = """select count(*) from task_run where flow_run_id = :run or flow_run_id in
               (select f.id from flow_run f join task_run t on f.parent_task_run_id = t.id where t.flow_run_id = :run)"""
    with sqlite3.connect(database) as db:
        return int(db.execute(query, {"run": flow_run_id}).fetchone()[0])


def run_pipeline(corpus: Path, output: Path, config: str | None, settings: list[str]) -> dict[str, Any]:
    # A Prefect home kept between harness runs, as a user's is: the first run ever pays for
    # creating the database, later ones do not.
    prefect_home = REPO / "benchmarks/.prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
    command = [sys.executable, "-m", "flows.cli", "run", "--input", str(corpus), "--output", str(output)]
    command += ["--config", config] if config else []
    for setting in settings:
        command += ["--set", setting]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, peak, timeline = threading.Event(), [0, 0], []
    watcher = threading.Thread(target=watch_rss, args=(psutil.Process(child.pid), stop, peak, timeline), daemon=True)
    watcher.start()
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    stop.set()
    watcher.join()
    if child.returncode != 0:
        sys.exit(f"harness: newsflow run failed ({child.returncode}):\n{stderr[-4000:]}")
    from tasks.dataset.run_record import read_run_records  # here: it imports torch, which the parent process does not need

    record = read_run_records(output)[0]  # the output folder is the harness's own: its only run
    sentences = int(record["counts"].get("encode", 0))
    return {
        "wall_s": round(wall, 2),
        "documents": record["n_kept"],
        "read": record["n_read"],
        "rejected": record["n_rejected"],
        "sentences": sentences,
        "shards": len({o["path"] for o in record["outputs"] if o["table"] == "documents"}),
        "documents_per_s": round(record["n_kept"] / wall, 2),
        "sentences_per_s": round(sentences / wall, 1),
        "stage_seconds": record["stage_seconds"],
        "flow_duration_s": record["duration_s"],
        "peak_rss_mb": round(peak[0] / 2**20),
        "peak_rss_cli_mb": round(peak[1] / 2**20),
        "task_runs": count_task_runs(prefect_home, record["run_id"]),
        "precision": record["models"].get("encoder", {}).get("precision"),
        "rss_timeline_mb": timeline,
    }


def pipeline_sentences(output: Path) -> Sentences:
    table = pd.read_parquet(output / "sentences", columns=["doc_id", "sentence_index", "text"])
    table = table.sort_values(["doc_id", "sentence_index"], kind="stable")
    return Sentences(table["doc_id"].tolist(), table["text"].tolist())


# ---- encoder, peer, naive ------------------------------------------------------------


def run_encoder_alone(sentences: Sentences, config: PipelineConfig) -> dict[str, Any]:
    """The pipeline's own encode call (batching, precision, tuned head) over one batch of
    every sentence and the mentions the entities stage chose, as the encode stage does per
    shard; model loading and finding the mentions not timed."""
    from tasks.stages.encode import pipeline_encoder, sentences_to_encode, tuned_stance_head
    from tasks.stages.entities import entities_shard

    encoder = pipeline_encoder(config)
    tuned = tuned_stance_head(config.stance.head, encoder) if config.stance.kind == "head" else None
    by_document: dict[str, list[str]] = {}
    for doc_id, text in zip(sentences.doc_ids, sentences.texts):
        by_document.setdefault(doc_id, []).append(text)
    documents = pa.table({"doc_id": list(by_document), "sentences": list(by_document.values())})
    batch = sentences_to_encode(documents, entities_shard(documents, config).parts["mentions"])
    encoder.encode(batch.texts[:64], [], None)  # warm-up
    seconds, _ = timed(lambda: encoder.encode(batch.texts, batch.spans, tuned))
    return rates(seconds, sentences) | {"precision": encoder.precision, "mentions": len(batch.spans)}


def run_peer(sentences: Sentences, model_path: Path) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    model.encode(sentences.texts[:64], batch_size=32)
    seconds, _ = timed(lambda: model.encode(sentences.texts, batch_size=32))
    return rates(seconds, sentences)


def run_naive(sentences: Sentences, model_path: Path, limit: int) -> dict[str, Any]:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_path), local_files_only=True, use_safetensors=True).eval()
    texts = sentences.texts[:limit]

    def loop() -> None:
        with torch.inference_mode():
            for text in texts:
                model(**tokenizer(text, return_tensors="pt", truncation=True, max_length=256))

    seconds, _ = timed(loop)
    return {"seconds": round(seconds, 2), "sentences": len(texts), "sentences_per_s": round(len(texts) / seconds, 1)}


def rates(seconds: float, sentences: Sentences) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 2),
        "sentences": len(sentences.texts),
        "sentences_per_s": round(len(sentences.texts) / seconds, 1),
        "documents_per_s": round(sentences.n_docs / seconds, 2),
    }


# ---- hardware limit -------------------------------------------------------------------


def gemm_gflops(dtype: torch.dtype, onednn: bool = False, size: int = 2048, repeat: int = 10) -> float:
    """Sustained rate of a size x size x size matrix product, in GFLOP/s."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    if onednn:  # fp32 through oneDNN: a linear layer on mkldnn tensors
        from torch.utils import mkldnn

        layer = mkldnn.to_mkldnn(torch.nn.Linear(size, size, bias=False).eval())
        x = a.to_mkldnn()
        step: Callable[[], Any] = lambda: layer(x)  # noqa: E731
    else:
        step = lambda: a @ b  # noqa: E731
    with torch.inference_mode():
        step()
        seconds, _ = timed(lambda: [step() for _ in range(repeat)])
    return round(2 * size**3 * repeat / seconds / 1e9, 1)


def encoder_flops_per_document(sentences: Sentences, config: PipelineConfig) -> float:
    """2 x (linear weights in the transformer layers) x tokens, averaged over documents;
    attention's own products are a few percent at these lengths and left out."""
    from tasks.stages.encode import pipeline_encoder

    encoder = pipeline_encoder(config)
    weights = sum(m.weight.numel() for m in encoder.model.modules() if isinstance(m, torch.nn.Linear))
    ids, _ = encoder.tokenize(sentences.texts)
    tokens = sum(len(x) for x in ids)
    return 2 * weights * tokens / sentences.n_docs


def run_hardware(sentences: Sentences, config: PipelineConfig, precision: str) -> dict[str, Any]:
    fp32, fp32_onednn, bf16 = gemm_gflops(torch.float32), gemm_gflops(torch.float32, onednn=True), gemm_gflops(torch.bfloat16)
    flops = encoder_flops_per_document(sentences, config)  # after the GEMMs: it imports the pipeline
    rate = bf16 if precision == "bf16" else max(fp32, fp32_onednn)
    return {
        "gemm_fp32_matmul_gflops": fp32,
        "gemm_fp32_onednn_gflops": fp32_onednn,
        "gemm_bf16_gflops": bf16,
        "encoder_gflop_per_document": round(flops / 1e9, 2),
        "precision": precision,
        "bound_documents_per_s": round(rate * 1e9 / flops, 1),
    }


# ---- report ----------------------------------------------------------------------------


def ratios(results: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    pipeline = results.get("pipeline", {}).get("sentences_per_s")
    for other in ("peer", "naive", "encoder"):
        if pipeline and other in results:
            out[f"pipeline/{other}"] = round(pipeline / results[other]["sentences_per_s"], 2)
    if "encoder" in results and "peer" in results:
        out["encoder/peer"] = round(results["encoder"]["sentences_per_s"] / results["peer"]["sentences_per_s"], 2)
    if "hardware" in results and "pipeline" in results:
        out["pipeline/hardware_bound"] = round(results["pipeline"]["documents_per_s"] / results["hardware"]["bound_documents_per_s"], 2)
    return out


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor()
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def table(results: dict[str, Any]) -> str:
    lines = ["| row | seconds | sentences/s | documents/s | peak RSS MB | notes |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    if "pipeline" in results:
        p = results["pipeline"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in p["stage_seconds"].items())
        lines.append(
            f"| full `newsflow run` ({p['precision']}) | {p['wall_s']:.1f} | {p['sentences_per_s']:.0f} | {p['documents_per_s']:.1f} | "
            f"{p['peak_rss_mb']} | {p['documents']} docs, {p['sentences']} sentences, {p['shards']} shards, "
            f"{p['task_runs']} task runs; task s: {stages} |"
        )
    for row, label in (
        ("encoder", "encoder alone, pipeline batching"),
        ("peer", "sentence-transformers encode(batch_size=32)"),
        ("naive", "one forward per sentence"),
    ):
        if row in results:
            r = results[row]
            docs = f"{r['documents_per_s']:.1f}" if "documents_per_s" in r else ""
            lines.append(f"| {label} | {r['seconds']:.1f} | {r['sentences_per_s']:.0f} | {docs} |  | {r['sentences']} sentences |")
    if "hardware" in results:
        h = results["hardware"]
        lines.append(
            f"| hardware bound ({h['precision']}) |  |  | {h['bound_documents_per_s']:.1f} |  | GEMM fp32 {h['gemm_fp32_matmul_gflops']:.0f} "
            f"(oneDNN {h['gemm_fp32_onednn_gflops']:.0f}), bf16 {h['gemm_bf16_gflops']:.0f} GFLOP/s; "
            f"{h['encoder_gflop_per_document']:.1f} GFLOP per document |"
        )
    lines.append("")
    lines.append("ratios: " + ", ".join(f"{k} {v}" for k, v in results["ratios"].items()))
    return "\n".join(lines)


def ensure_corpus(docs: int, corpus: Path | None) -> Path:
    folder = corpus or REPO / "benchmarks/corpus" / str(docs)
    if not folder.exists():
        subprocess.run([sys.executable, str(REPO / "benchmarks/make_corpus.py"), "--docs", str(docs), "--out", str(folder)], check=True)
    return folder


def measure_row(row: str, sentences: Sentences, config: PipelineConfig, model_path: Path, naive_sentences: int, precision: str) -> dict[str, Any]:
    if row == "encoder":
        return run_encoder_alone(sentences, config)
    if row == "peer":
        return run_peer(sentences, model_path)
    if row == "naive":
        return run_naive(sentences, model_path, naive_sentences)
    return run_hardware(sentences, config, precision)


def measure_in_subprocess(row: str, sentences_file: Path, args: argparse.Namespace, model_path: Path, precision: str) -> dict[str, Any]:
    """Each row in a fresh process: no row inherits another's threads, caches or allocator
    settings, and the peer runs as a user's script would."""
    command = [
        sys.executable,
        __file__,
        "--measure",
        row,
        "--sentences",
        str(sentences_file),
        "--model-path",
        str(model_path),
        "--naive-sentences",
        str(args.naive_sentences),
        "--precision",
        precision,
    ]
    command += ["--config", args.config] if args.config else []
    for setting in args.settings:
        command += ["--set", setting]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"harness: the {row} row failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="corpus size (benchmarks/corpus/<docs>, built if missing)")
    parser.add_argument("--corpus", type=Path, help="use this folder instead")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument("--config", help="pipeline config (default configs/default.toml)")
    parser.add_argument("--set", dest="settings", action="append", default=[], help="config override for the pipeline, repeatable")
    parser.add_argument("--naive-sentences", type=int, default=3000, help="sentences for the naive loop (default 3000)")
    parser.add_argument("--json", type=Path, help="write the results here (default benchmarks/results/harness-<docs>.json)")
    # one row in a child process (used by the harness itself)
    parser.add_argument("--measure", choices=ROWS[1:], help=argparse.SUPPRESS)
    parser.add_argument("--sentences", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = load_config(args.config, dict(parse_override(s) for s in args.settings))
    if args.measure:
        frame = pd.read_parquet(args.sentences)
        sentences = Sentences(frame["doc_id"].tolist(), frame["text"].tolist())
        print(json.dumps(measure_row(args.measure, sentences, config, args.model_path, args.naive_sentences, args.precision)))
        return 0
    rows = [r for r in args.rows.split(",") if r]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")

    from tasks.models.encoder import model_folder  # the parent measures nothing itself

    corpus = ensure_corpus(args.docs, args.corpus)
    results: dict[str, Any] = {
        "corpus": str(corpus),
        "docs_requested": args.docs,
        "machine": machine(),
        "config": args.config or "configs/default.toml",
        "settings": args.settings,
    }
    with tempfile.TemporaryDirectory(prefix="nf-harness-") as scratch:
        output = Path(scratch) / "output"
        results["pipeline"] = run_pipeline(corpus, output, args.config, args.settings)  # always: it yields the sentences
        print(f"pipeline done: {results['pipeline']['documents']} documents in {results['pipeline']['wall_s']} s", file=sys.stderr)
        sentences = pipeline_sentences(output)
        sentences_file = Path(scratch) / "sentences.parquet"
        pd.DataFrame({"doc_id": sentences.doc_ids, "text": sentences.texts}).to_parquet(sentences_file)
        for row in ROWS[1:]:
            if row in rows:
                results[row] = measure_in_subprocess(row, sentences_file, args, model_folder(config.encoder.model), results["pipeline"]["precision"] or "fp32")
    results["ratios"] = ratios(results)
    out = args.json or REPO / "benchmarks/results" / f"harness-{args.docs}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
