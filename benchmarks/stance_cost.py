"""What finding entities and each stance head cost per document, beside the encoder's own
pass: the encode stage (one transformer pass per sentence; the names found in it, by the
token head on that pass or by spaCy; grouping; the tuned head's layers over the judged
mentions) and the stance stage.

    python benchmarks/stance_cost.py [--input benchmarks/corpus/100] [--repeat 2]

Cleans the articles once, then times, best of `--repeat`:
- the encoder pass alone (sentence vectors, no token states kept);
- the recognisers alone: the token head over states already computed, and spaCy;
- the whole encode stage and the stance stage, for each recogniser with the frozen
  (linear) head and with the tuned head.
A measurement, never part of the tests."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from flows.stages import STAGE_BY_NAME, stage_settings
from tasks.config import CleanConfig, InputConfig, load_config
from tasks.records import CleanDocument, RawDocument
from tasks.stages.clean import clean_document
from tasks.stages.encode import encode_shard, pass_layers, pipeline_encoder
from tasks.stages.entities.recognise import recognise, recognise_in_pass
from tasks.stages.ingest import list_inputs, read_records
from tasks.stages.stance import stance_shard

ROOT = Path(__file__).resolve().parents[1]
HEADS = {"frozen (linear)": "data/models/stance-linear", "tuned top layers": "data/models/stance-tuned"}
RECOGNISERS = ("encoder", "spacy")


def cleaned_documents(paths: list[str]) -> pa.Table:
    files, _ = list_inputs(paths, InputConfig().extensions)
    raw = [item for f in files for item in read_records(f, InputConfig()) if isinstance(item, RawDocument)]
    kept = [d for d in (clean_document(r, CleanConfig()) for r in raw) if isinstance(d, CleanDocument)]
    return pa.table({"doc_id": [d.doc_id for d in kept], "sentences": [d.sentences for d in kept]})


def best_ms(fn: Callable[[], Any], repeat: int, n: int) -> tuple[float, Any]:
    """(best milliseconds per document over `repeat` calls, the last call's result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return round(1000 * best / n, 2), out


def time_pass_and_recognisers(documents: pa.Table, repeat: int) -> dict:
    """The encoder pass alone, then each recogniser on its own."""
    config = load_config(None)
    settings = stage_settings(STAGE_BY_NAME["encode"], config)
    encoder = pipeline_encoder(config)
    texts = [s for sentences in documents.column("sentences").to_pylist() for s in sentences]
    n = documents.num_rows
    encoder.forward_passes(texts[:8])  # load outside the timing
    pass_ms, _ = best_ms(lambda: encoder.forward_passes(texts, (), set()), repeat, n)
    _, passes = encoder.forward_passes(texts, pass_layers(settings, encoder, None))
    head_ms, _ = best_ms(lambda: recognise_in_pass(texts, passes, config.entities.head, encoder.n_layers), repeat, n)
    recognise(texts[:8], config.entities.model, config.entities.batch_size)
    spacy_ms, _ = best_ms(lambda: recognise(texts, config.entities.model, config.entities.batch_size), repeat, n)
    return {"documents": n, "sentences": len(texts), "encoder_pass_ms_per_doc": pass_ms, "token_head_ms_per_doc": head_ms, "spacy_ms_per_doc": spacy_ms}


def time_stages(documents: pa.Table, recogniser: str, head: str, repeat: int) -> dict:
    """The encode and stance stages as a run calls them."""
    config = load_config(None, {"entities.recogniser": recogniser, "stance.head": head})
    encode_settings = stage_settings(STAGE_BY_NAME["encode"], config)
    stance_settings = stage_settings(STAGE_BY_NAME["stance"], config)
    encode_shard(documents.slice(0, 2), encode_settings)  # load the models outside the timing
    n = documents.num_rows
    encode_ms, encoded = best_ms(lambda: encode_shard(documents, encode_settings), repeat, n)
    stance_ms, _ = best_ms(lambda: stance_shard(encoded.table, encoded.parts["mentions"], stance_settings), repeat, n)
    return {
        "entities": encoded.parts["entities"].num_rows,
        "judged_mentions": encoded.parts["mentions"].num_rows,
        "encode_ms_per_doc": encode_ms,
        "stance_ms_per_doc": stance_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", action="append", default=None, help="file, folder or glob (default: data/samples)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    documents = cleaned_documents(args.input or [str(ROOT / "data" / "samples")])
    report: dict[str, Any] = {"alone": time_pass_and_recognisers(documents, args.repeat)}
    for recogniser in RECOGNISERS:
        for name, head in HEADS.items():
            report[f"{recogniser} recogniser, {name}"] = time_stages(documents, recogniser, head, args.repeat)
            print(json.dumps({f"{recogniser} recogniser, {name}": report[f"{recogniser} recogniser, {name}"]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
