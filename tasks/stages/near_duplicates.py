"""Near-duplicates: copies of one story (a wire piece retitled, trimmed, prefixed with a
dateline, a sentence changed) found by MinHash over word shingles of the cleaned body.

Candidates come from locality-sensitive hashing (datasketch's MinHashLSH) at a threshold
below the one that decides, so that a trimmed copy, whose Jaccard similarity to the full
story is low, is still looked at. A candidate is a copy when the estimated Jaccard
similarity reaches `jaccard`, or when the smaller text lies almost wholly inside the
larger one (estimated containment reaches `containment`).

Every copy keeps its row. Documents that are copies of each other share a
`duplicate_group` (the doc_id of the group's first-seen member, so it never changes) and
a `canonical_doc_id` (the earliest published member known, else the first seen)."""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tasks.config import DuplicatesConfig

SEED = 1  # fixed, as are the scheme and the hash: signatures from different runs must be comparable
SCHEME = "affine32"  # uint32 hash values: half the index of the 64-bit schemes
# CRC-32 of each shingle (the scheme mixes it with MurmurHash3's finalizer before permuting):
# about ten times faster than datasketch's default SHA-1 here, and as stable across processes.
WORD = re.compile(r"\w+", re.UNICODE)
# LSH finds pairs from about this estimated Jaccard similarity up: low enough that a copy
# trimmed to half the story is looked at; `is_copy` then decides.
CANDIDATE_THRESHOLD = 0.4


@dataclass(frozen=True)
class Known:
    """A document as the index holds it: its signature and how many shingles it has, its
    group, and what decides its group's canonical member."""

    doc_id: str
    signature: np.ndarray  # (num_perm,) uint32
    n_shingles: int
    duplicate_group: str
    published: str  # ISO date-time, "" when unknown
    seen_order: int  # position in the order documents were first seen (runs, then rows)


@dataclass(frozen=True)
class Assignment:
    doc_id: str
    duplicate_group: str
    canonical_doc_id: str
    similarity: float  # to the closest earlier copy; 0 for a group's first member


def shingle_words(text: str) -> list[str]:
    """The body's words, Unicode-folded and case-folded, so that typography and case
    changes between copies do not count as edits."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return WORD.findall(folded)


def shingles(sentences: Sequence[str], size: int) -> set[bytes]:
    """Overlapping runs of `size` words within each sentence (a shorter sentence is one
    shingle). Shingles never cross a sentence boundary, so a copy with its paragraphs in
    another order has the same shingles."""
    out: set[bytes] = set()
    for sentence in sentences:
        words = shingle_words(sentence)
        if 0 < len(words) <= size:
            out.add(" ".join(words).encode())
        out.update(" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1))
    return out


def signatures(documents: Sequence[Sequence[str]], settings: DuplicatesConfig) -> tuple[np.ndarray, np.ndarray]:
    """(MinHash signatures, shingle counts) of documents given as their sentences:
    (n, num_perm) uint32 and (n,) int32."""
    from datasketch import MinHash

    out = np.zeros((len(documents), settings.num_perm), np.uint32)
    counts = np.zeros(len(documents), np.int32)
    for row, sentences in enumerate(documents):
        grams = shingles(sentences, settings.shingle_words)
        counts[row] = len(grams)
        minhash = MinHash(num_perm=settings.num_perm, seed=SEED, hashfunc=zlib.crc32, scheme=SCHEME)
        if grams:
            minhash.update_batch(list(grams))
        out[row] = minhash.hashvalues
    return out, counts


def lean(signature: np.ndarray):  # noqa: ANN201  (datasketch's LeanMinHash, imported late)
    from datasketch import LeanMinHash

    return LeanMinHash(seed=SEED, hashvalues=signature, scheme=SCHEME)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def estimated_containment(jaccard: float, n_smaller: int, n_larger: int) -> float:
    """How much of the smaller set lies in the larger: |A∩B| / |A|, with |A∩B| from the
    Jaccard estimate and both sizes (|A∩B| = J (|A| + |B|) / (1 + J))."""
    if n_smaller <= 0:
        return 0.0
    return min(1.0, jaccard * (n_smaller + n_larger) / ((1.0 + jaccard) * n_smaller))


def is_copy(a: Known, b: Known, settings: DuplicatesConfig) -> tuple[bool, float]:
    """(whether a and b are copies of one story, their estimated Jaccard similarity)."""
    if not a.n_shingles or not b.n_shingles:
        return False, 0.0
    jaccard = estimated_jaccard(a.signature, b.signature)
    smaller, larger = sorted((a.n_shingles, b.n_shingles))
    return jaccard >= settings.jaccard or estimated_containment(jaccard, smaller, larger) >= settings.containment, jaccard


class NearDuplicateIndex:
    """The documents seen so far, searchable by signature. Built from the committed index
    and grown by each document a run assigns."""

    def __init__(self, settings: DuplicatesConfig, known: Iterable[Known] = ()) -> None:
        from datasketch import MinHashLSH

        self.settings = settings
        self.lsh = MinHashLSH(threshold=CANDIDATE_THRESHOLD, num_perm=settings.num_perm)
        self.documents: dict[str, Known] = {}
        self.canonical: dict[str, Known] = {}  # duplicate_group -> its canonical member
        for document in known:
            self.add(document)

    def add(self, document: Known) -> None:
        if document.doc_id in self.documents:
            return
        self.documents[document.doc_id] = document
        if document.n_shingles:
            self.lsh.insert(document.doc_id, lean(document.signature), check_duplication=False)
        current = self.canonical.get(document.duplicate_group)
        if current is None or canonical_order(document) < canonical_order(current):
            self.canonical[document.duplicate_group] = document

    def closest_copy(self, document: Known) -> tuple[Known | None, float]:
        """The most similar earlier document that is a copy of this one, with its similarity."""
        if not document.n_shingles:
            return None, 0.0
        best, best_similarity = None, 0.0
        for doc_id in self.lsh.query(lean(document.signature)):
            other = self.documents[doc_id]
            copy, similarity = is_copy(document, other, self.settings)
            if copy and (best is None or similarity > best_similarity):
                best, best_similarity = other, similarity
        return best, best_similarity

    def assign(self, document: Known) -> Assignment:
        """Put a new document in its group (a new one when it copies nothing seen) and add it.
        A document the index already holds (a rerun under another analysis) keeps its group."""
        if (held := self.documents.get(document.doc_id)) is not None:
            return Assignment(held.doc_id, held.duplicate_group, self.canonical[held.duplicate_group].doc_id, 1.0)
        closest, similarity = self.closest_copy(document)
        group = closest.duplicate_group if closest else document.doc_id
        placed = Known(document.doc_id, document.signature, document.n_shingles, group, document.published, document.seen_order)
        self.add(placed)
        return Assignment(document.doc_id, group, self.canonical[group].doc_id, similarity)


def canonical_order(document: Known) -> tuple[int, str, int]:
    """Earliest published first; documents without a date after every dated one, in the order seen."""
    return (0, document.published, document.seen_order) if document.published else (1, "", document.seen_order)
