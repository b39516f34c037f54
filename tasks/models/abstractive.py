"""Abstractive summaries from any seq2seq model (BART, T5, Pegasus), map-reduce over long
articles: the article is cut into token windows on sentence boundaries that fit the
model's input, each window is summarised, and the joined window summaries are summarised
again while there is more than one. Nothing is truncated: a sentence longer than a window
is split across windows by tokens. Generation is deterministic and every decoding setting
comes from the config, not from the model's shipped defaults."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import GenerationConfig

from tasks.models.hf_runtime import LoadedModel

MAX_ROUNDS = 8  # reduce rounds; each shrinks the text, so this is a guard, not a budget
REDUCE_MARGIN = 8  # tokens: a summary can re-tokenise a little longer than it was generated


class SummaryLengthError(ValueError):
    """Settings under which map-reduce could not shrink a long article."""


@dataclass(frozen=True)
class GenerationSettings:
    num_beams: int = 4
    max_new_tokens: int = 128
    min_new_tokens: int = 16
    no_repeat_ngram_size: int = 3
    length_penalty: float = 1.0
    prefix: str = ""  # T5-style task prefix, e.g. "summarize: "
    max_input_tokens: int = 0  # 0: the model's own limit
    batch_size: int = 8


@dataclass
class Summary:
    text: str
    chunks: int  # windows the article was cut into (the map step)
    rounds: int  # generate calls the article went through (1 when it fits at once)


def special_token_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text ([CLS] … [SEP] for
    BERT, <s> … </s> for BART, … </s> for T5), found by tokenising one word both ways."""
    word = tokenizer("news", add_special_tokens=False)["input_ids"]
    full = tokenizer("news")["input_ids"]
    start = next(i for i in range(len(full) - len(word) + 1) if full[i : i + len(word)] == word)
    return full[:start], full[start + len(word) :]


class Seq2SeqSummarizer:
    def __init__(self, loaded: LoadedModel, settings: GenerationSettings):
        self.loaded = loaded
        self.settings = settings
        self.tokenizer = loaded.tokenizer
        self.prefix_ids: list[int] = self.tokenizer(settings.prefix, add_special_tokens=False)["input_ids"] if settings.prefix else []
        self.head_ids, self.tail_ids = special_token_frame(self.tokenizer)
        self.window = self.input_limit() - len(self.prefix_ids) - len(self.head_ids) - len(self.tail_ids)
        if self.window < 2 * settings.max_new_tokens + REDUCE_MARGIN:
            # Two window summaries must fit one window, or the reduce step cannot shrink anything.
            raise SummaryLengthError(
                f"summary.max_new_tokens ({settings.max_new_tokens}) must be at most half the model's input window less {REDUCE_MARGIN} "
                f"({self.window} tokens after the prefix and special tokens)"
            )

    def input_limit(self) -> int:
        """The longest input the model takes: the config's, else the smaller of the
        tokenizer's and the position embeddings' limits."""
        limits = [self.tokenizer.model_max_length, getattr(self.loaded.model.config, "max_position_embeddings", None)]
        usable = [int(x) for x in limits if x and int(x) < 1_000_000]  # tokenizers say 1e30 when they do not know
        model_limit = min(usable) if usable else 512
        return min(self.settings.max_input_tokens, model_limit) if self.settings.max_input_tokens else model_limit

    def windows(self, texts: list[str]) -> list[list[int]]:
        """Token windows of at most `self.window` tokens, cut between sentences where it can
        and inside a sentence only when that sentence alone is longer than a window."""
        # Every sentence after the first with its leading space, as it stands in the running text:
        # byte-level BPE (BART, RoBERTa) codes "␣The" and "The" differently.
        spaced = [t if k == 0 else " " + t for k, t in enumerate(texts)]
        ids = self.tokenizer(spaced, add_special_tokens=False)["input_ids"] if texts else []
        windows: list[list[int]] = []
        current: list[int] = []
        for sentence in ids:
            pieces = [sentence[i : i + self.window] for i in range(0, len(sentence), self.window)] or [[]]
            for piece in pieces:
                if current and len(current) + len(piece) > self.window:
                    windows.append(current)
                    current = []
                current = current + piece
        if current:
            windows.append(current)
        return windows

    def generation_config(self) -> GenerationConfig:
        """A fresh config: the model's token ids, and every decoding setting from ours. It also
        replaces the model's own, so no shipped default (a repetition penalty, a time limit)
        can be merged back in by `generate`."""
        shipped = self.loaded.model.generation_config
        s = self.settings
        return GenerationConfig(
            decoder_start_token_id=shipped.decoder_start_token_id,
            bos_token_id=shipped.bos_token_id,
            eos_token_id=shipped.eos_token_id,
            pad_token_id=shipped.pad_token_id,
            forced_bos_token_id=shipped.forced_bos_token_id,
            forced_eos_token_id=shipped.forced_eos_token_id,
            do_sample=False,
            num_beams=s.num_beams,
            max_new_tokens=s.max_new_tokens,
            min_new_tokens=s.min_new_tokens,
            no_repeat_ngram_size=s.no_repeat_ngram_size,
            length_penalty=s.length_penalty,
            early_stopping=True,
        )

    def generate(self, windows: list[list[int]]) -> list[str]:
        """One summary per token window, generated in length-sorted batches."""
        outputs = [""] * len(windows)
        inputs = [self.head_ids + self.prefix_ids + w + self.tail_ids for w in windows]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        config = self.generation_config()
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))  # similar lengths share a batch
        for batch in (order[k : k + self.settings.batch_size] for k in range(0, len(order), self.settings.batch_size)):
            width = max(len(inputs[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : len(inputs[i])] = torch.tensor(inputs[i])
                attention[row, : len(inputs[i])] = 1
            with self.loaded.lock, torch.inference_mode():
                self.loaded.model.generation_config = config
                generated = self.loaded.model.generate(
                    input_ids=input_ids.to(self.loaded.device), attention_mask=attention.to(self.loaded.device), generation_config=config
                )
            for row, text in zip(batch, self.tokenizer.batch_decode(generated, skip_special_tokens=True)):
                outputs[row] = text.strip()
        return outputs

    def summarize_many(self, documents: list[list[str]]) -> list[Summary]:
        """Summaries of many articles (each a list of sentences), windows batched across articles."""
        pending = {d: self.windows(sentences) for d, sentences in enumerate(documents)}
        results = {d: Summary("", len(w), 0) for d, w in pending.items()}
        pending = {d: w for d, w in pending.items() if w}  # an article without text has an empty summary
        for _ in range(MAX_ROUNDS):
            if not pending:
                return [results[d] for d in range(len(documents))]
            flat = [(d, w) for d, windows in pending.items() for w in windows]
            texts = self.generate([w for _, w in flat])
            by_document: dict[int, list[str]] = {}
            for (d, _), text in zip(flat, texts):
                by_document.setdefault(d, []).append(text)
            pending = {}
            for d, summaries in by_document.items():
                results[d].rounds += 1
                if len(summaries) == 1:
                    results[d].text = summaries[0]
                    continue
                pending[d] = self.windows(summaries)  # reduce: the window summaries, summarised again
                if len(pending[d]) >= len(summaries):
                    raise SummaryLengthError(
                        f"the reduce step did not shrink ({len(summaries)} windows stayed {len(pending[d])}); lower summary.max_new_tokens"
                    )
        raise SummaryLengthError(f"articles still had several windows after {MAX_ROUNDS} reduce rounds")
