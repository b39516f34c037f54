"""Named entities from the sentence encoder's own token states: a small token-classification
head (BIO over PERSON, ORG, GPE, LOC, NORP) that replaces spaCy's NER, which costs ~140 ms per
article, by reading the states the pipeline already computes for every sentence.

The encoder is uncased (all-MiniLM-L6-v2), so capitalisation is invisible to its states; the
head therefore also reads a few shape features taken from the original characters of each
token (through the tokenizer's offsets). Nothing here runs another transformer pass: the input
is the final states (layer 6), optionally the states entering layer 4 from the same pass.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

TYPES: tuple[str, ...] = ("PERSON", "ORG", "GPE", "LOC", "NORP")
LABELS: tuple[str, ...] = ("O", *(f"{p}-{t}" for t in TYPES for p in ("B", "I")))
OUTSIDE = 0  # the index of "O" in LABELS
Span = tuple[int, int, str]  # start, end (exclusive), type
Offsets = list[tuple[int, int]]

# Shape features, one column each, in this order (card.json lists them by name).
LENGTH_BUCKETS: tuple[tuple[int, int], ...] = ((1, 1), (2, 3), (4, 6), (7, 10), (11, 10_000))
FEATURES: tuple[str, ...] = (
    "special",  # [CLS]/[SEP]: offsets (0, 0)
    "piece_first_upper",  # this piece's first character is upper case
    "word_first_upper",  # the word it belongs to starts upper case (pieces inherit it)
    "word_all_upper",  # the word has 2+ letters, all upper case ("IMF", "NATO")
    "word_mixed_case",  # an upper-case letter after the first ("McDonald", "iPhone")
    "piece_digit",  # any digit in the piece
    "piece_punct",  # no letter or digit in the piece
    "continuation",  # a WordPiece continuation (##): letters/digits touch the previous piece
    "attached",  # no space before it (the "." in "U.S.", the "'" in "Obama's")
    "first_word",  # part of the sentence's first word, capitalised whatever it is
    "prev_word_upper",  # the previous word starts upper case
    "next_word_upper",  # the next word starts upper case
    "prev_word_the",  # the previous word is "the" (names after it are ORG/GPE/LOC, rarely PERSON)
    "title_case_sentence",  # most words capitalised (a headline): capitals say little there
    *(f"word_len_{lo}_{hi}" if hi < 10_000 else f"word_len_{lo}+" for lo, hi in LENGTH_BUCKETS),
)


def words_of(text: str, offsets: Offsets) -> list[int]:
    """For each token, the index of its word (pieces whose letters/digits touch share a word;
    special tokens get -1). BERT's basic tokenizer splits at every punctuation mark, so two
    touching alphanumeric pieces can only be WordPiece parts of one word."""
    word_of, word = [], -1
    prev_end = -1
    for s, e in offsets:
        if s == e:
            word_of.append(-1)
            continue
        joined = s == prev_end and s > 0 and text[s - 1].isalnum() and text[s].isalnum()
        if not joined:
            word += 1
        word_of.append(word)
        prev_end = e
    return word_of


def features(text: str, offsets: Offsets) -> torch.Tensor:
    """The shape features of each token (tokens x len(FEATURES)), from the original text."""
    word_of = words_of(text, offsets)
    n_words = max(word_of) + 1
    starts, ends = [len(text)] * n_words, [0] * n_words
    for (s, e), w in zip(offsets, word_of):
        if w >= 0:
            starts[w], ends[w] = min(starts[w], s), max(ends[w], e)
    words = [text[starts[w] : ends[w]] for w in range(n_words)]
    alpha = [w for w in words if w[:1].isalpha()]
    title_case = len(alpha) >= 4 and sum(w[0].isupper() for w in alpha) / len(alpha) > 0.6
    upper = [w[:1].isupper() for w in words]
    rows: list[list[float]] = []
    prev_end = -1
    for (s, e), w in zip(offsets, word_of):
        if w < 0:
            rows.append([1.0] + [0.0] * (len(FEATURES) - 1))
            continue
        piece, word = text[s:e], words[w]
        letters = [c for c in word if c.isalpha()]
        n = len(word)
        rows.append(
            [
                0.0,
                float(piece[:1].isupper()),
                float(upper[w]),
                float(len(letters) >= 2 and all(c.isupper() for c in letters)),
                float(any(c.isupper() for c in word[1:]) and not all(c.isupper() for c in letters)),
                float(any(c.isdigit() for c in piece)),
                float(not any(c.isalnum() for c in piece)),
                float(s == prev_end and text[s - 1].isalnum() and piece[:1].isalnum()),
                float(s == prev_end),
                float(w == 0),
                float(w > 0 and upper[w - 1]),
                float(w + 1 < n_words and upper[w + 1]),
                float(w > 0 and words[w - 1].lower() == "the"),
                float(title_case),
                *(float(lo <= n <= hi) for lo, hi in LENGTH_BUCKETS),
            ]
        )
        prev_end = e
    return torch.tensor(rows, dtype=torch.float32)


def bio_labels(offsets: Offsets, spans: list[Span]) -> list[int]:
    """Training targets: a token is in an entity when its characters overlap it; the first
    such token is B-, the rest I-. Spans of types outside TYPES are left as O."""
    labels = [OUTSIDE] * len(offsets)
    for start, end, kind in spans:
        if kind not in TYPES:
            continue
        first = True
        for i, (s, e) in enumerate(offsets):
            if s < e and s < end and start < e:
                labels[i] = LABELS.index(f"{'B' if first else 'I'}-{kind}")
                first = False
    return labels


def decode(text: str, offsets: Offsets, probs: torch.Tensor) -> list[Span]:
    """Spans from per-token label probabilities (tokens x len(LABELS)), read by marginals
    rather than by each token's best label, because a per-token head often splits its vote
    between types or between B- and I- inside one name ("Ku Klux Klan": B-ORG, I-PERSON,
    I-PERSON, I-ORG). A token is inside a name when P(O) < 0.5; a span continues unless the
    token begins a new word and P(B-any) > P(I-any); each span widens to whole words (a name
    never ends mid-word) and takes the type with the most probability summed over its tokens.
    A span with no capital letter or digit is dropped: in the silver labels such spans are 0.3%
    and nearly all spaCy mistakes, and here they were stray "the" or "bank" pieces."""
    word_of = words_of(text, offsets)
    p = probs.tolist()
    n_types = len(TYPES)
    groups: list[list[int]] = []
    inside = False
    for i, row in enumerate(p):
        if word_of[i] < 0 or row[OUTSIDE] >= 0.5:
            inside = False
            continue
        p_b, p_i = sum(row[1::2]), sum(row[2::2])
        if not inside or (p_b > p_i and word_of[i] != word_of[i - 1]):
            groups.append([i])
        else:
            groups[-1].append(i)
        inside = True
    spans: list[Span] = []
    for g in groups:
        first, last = g[0], g[-1]
        while first > 0 and word_of[first - 1] == word_of[first]:
            first -= 1
        while last + 1 < len(offsets) and word_of[last + 1] == word_of[last]:
            last += 1
        mass = [sum(p[i][1 + 2 * t] + p[i][2 + 2 * t] for i in g) for t in range(n_types)]
        kind = TYPES[max(range(n_types), key=lambda t: mass[t])]
        start, end = offsets[first][0], offsets[last][1]
        if not any(c.isupper() or c.isdigit() for c in text[start:end]):
            continue
        if spans and spans[-1][1] > start:  # widened into the previous span: join them
            start = spans.pop()[0]
        spans.append((start, end, kind))
    return spans


@dataclass
class HeadConfig:
    """What the head is; stored in card.json so load() rebuilds the same module."""

    kind: str = "mlp"  # "linear", "mlp", "conv" (MLP + one 3-token convolution) or "gru" (MLP + BiGRU)
    layers: tuple[int, ...] = (6,)  # encoder states read: 6 = final; 4 = entering layer 4, same pass
    dim: int = 384
    hidden: int = 256
    dropout: float = 0.2
    labels: tuple[str, ...] = LABELS
    features: tuple[str, ...] = FEATURES
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_in(self) -> int:
        return self.dim * len(self.layers) + len(self.features)


class TokenNerHead(nn.Module):
    """Per-token label scores from [states of each layer; shape features]. The states are
    standardised with the training set's mean and std (kept as buffers), so one learning rate
    suits states and 0/1 features alike."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        self.config = config
        n_in, h, n_out = config.n_in, config.hidden, len(config.labels)
        self.register_buffer("mean", torch.zeros(n_in))
        self.register_buffer("std", torch.ones(n_in))
        self.drop = nn.Dropout(config.dropout)
        if config.kind == "linear":
            self.out = nn.Linear(n_in, n_out)
        else:
            self.inp = nn.Linear(n_in, h)
            if config.kind == "conv":
                self.conv = nn.Conv1d(h, h, 3, padding=1)
            elif config.kind == "gru":
                self.gru = nn.GRU(h, h // 2, batch_first=True, bidirectional=True)
            elif config.kind != "mlp":
                raise ValueError(f"unknown head kind {config.kind!r}")
            self.out = nn.Linear(h, n_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (batch, tokens, n_in) padded; mask: (batch, tokens) bool. Returns logits."""
        x = self.drop((x - self.mean) / self.std)
        if self.config.kind == "linear":
            return self.out(x)
        h = torch.nn.functional.gelu(self.inp(x)) * mask.unsqueeze(-1)  # padding stays zero
        if self.config.kind == "conv":
            h = h + torch.nn.functional.gelu(self.conv(self.drop(h).transpose(1, 2)).transpose(1, 2))
            h = h * mask.unsqueeze(-1)
        elif self.config.kind == "gru":
            lengths = mask.sum(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(self.drop(h), lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.gru(packed)
            h = h + nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])[0]
        return self.out(self.drop(h))


def inputs(states_by_layer: list[list[torch.Tensor]], offsets_list: list[Offsets], sentences: list[str]) -> list[torch.Tensor]:
    """Per sentence, the head's input rows: the states of each layer (in config order) and
    the shape features, side by side."""
    return [
        torch.cat([*(layer[i].float() for layer in states_by_layer), features(text, offs)], dim=1)
        for i, (offs, text) in enumerate(zip(offsets_list, sentences))
    ]


def pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths as one zero-padded batch and its mask."""
    width = max(len(r) for r in rows)
    x = torch.zeros(len(rows), width, rows[0].shape[1])
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
        mask[i, : len(r)] = True
    return x, mask


class TokenNer:
    """The head with its decoding, save and load: what the entities stage would call."""

    def __init__(self, head: TokenNerHead, card: dict[str, Any] | None = None):
        self.head = head.eval()
        self.card = card or {}

    @property
    def config(self) -> HeadConfig:
        return self.head.config

    @torch.inference_mode()
    def predict_spans(
        self,
        states_list: list[torch.Tensor],
        offsets_list: list[Offsets],
        sentences: list[str],
        layer4_list: list[torch.Tensor] | None = None,
        batch_size: int = 64,
    ) -> list[list[Span]]:
        """The entities (start, end, type) of each sentence, from its final token states (and
        the states entering layer 4 when the head reads them) and its tokens' offsets."""
        layers = {6: states_list, 4: layer4_list}
        if any(layers.get(n) is None for n in self.config.layers):
            raise ValueError(f"this head reads encoder layers {self.config.layers}")
        rows = inputs([layers[n] for n in self.config.layers], offsets_list, sentences)  # type: ignore[misc]
        out: list[list[Span]] = []
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # little padding per batch
        probs: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            x, mask = pad([rows[i] for i in idx])
            p = self.head(x, mask).softmax(-1)
            for j, i in enumerate(idx):
                probs[i] = p[j, : len(rows[i])]
        for text, offs, pr in zip(sentences, offsets_list, probs):
            out.append(decode(text, offs, pr))
        return out

    def save(self, folder: Path | str, card: dict[str, Any] | None = None) -> None:
        """weights.safetensors (the head and its standardisation) and card.json (labels,
        features, hyperparameters, training data hash, metrics)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(folder / "weights.safetensors"))
        self.card = {**self.card, **(card or {}), "config": asdict(self.config)}
        self.card["weights_sha256"] = hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest()
        (folder / "card.json").write_text(json.dumps(self.card, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path | str) -> TokenNer:
        """The head saved in `folder`; refuses one whose features or labels differ from this
        code's (the weights would be read against the wrong columns)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        card = json.loads((folder / "card.json").read_text())
        raw = dict(card["config"])
        raw["layers"], raw["labels"], raw["features"] = tuple(raw["layers"]), tuple(raw["labels"]), tuple(raw["features"])
        config = HeadConfig(**raw)
        if config.features != FEATURES or config.labels != LABELS:
            raise ValueError(f"{folder}: saved with other features or labels than this code's")
        head = TokenNerHead(config)
        head.load_state_dict(load_file(str(folder / "weights.safetensors")))
        return cls(head, card)
