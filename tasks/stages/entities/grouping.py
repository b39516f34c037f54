"""One entity per document for all the ways the document names it, and one id per entity
across documents and runs.

Within a document: identical names (accent- and case-folded) are one entity; a lone surname
or first name joins the one person whose full name has it ("Guterres", after "António
Guterres"); an acronym joins the one organisation whose initials it is, or that it followed
in parentheses ("the International Atomic Energy Agency (IAEA)"). The type is the mentions'
vote, and a person back-off makes a person (spaCy calls a lone surname an ORG at times).
Across documents: the id is a hash of the folded name, and the alias table names entities."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from tasks.stages.entities.names import acronym_of, fold, is_acronym

TYPE_ORDER = ("PERSON", "ORG", "GPE", "LOC", "NORP", "MISC")  # ties in the type vote go to the earlier
PARENTHESISED = re.compile(r"\s*\(([^()]{2,12})\)")
BACK_OFF_LABELS = frozenset({"PERSON", "ORG"})  # what a lone surname is labelled as


@dataclass(frozen=True)
class Mention:
    """One mention in a document, as the recogniser or the alias table found it."""

    sentence: int
    start: int
    end: int
    surface: str  # as written (visible characters)
    name: str  # as a name: no leading "the", possessive or (for people) title
    label: str  # PERSON, ORG, GPE, LOC (FAC only as a known entity's metonym)
    known: str | None = None  # the alias table's name for it
    found: bool = True  # by the recogniser; False: by the alias table's search only


@dataclass
class Entity:
    name: str
    type: str
    known: bool
    mentions: list[Mention] = field(default_factory=list)

    @property
    def entity_id(self) -> str:
        return entity_id(self.name)

    @property
    def surfaces(self) -> list[str]:
        return list(dict.fromkeys(m.surface for m in self.mentions))


def entity_id(name: str) -> str:
    """The same for every spelling that folds alike: "António Guterres", "ANTONIO GUTERRES"."""
    return hashlib.sha256(f"entity\x00{fold(name)}".encode()).hexdigest()[:16]


def voted_type(mentions: list[Mention], person: bool) -> str:
    if person:
        return "PERSON"
    votes = Counter("ORG" if m.label == "FAC" else m.label for m in mentions)
    return max(votes, key=lambda t: (votes[t], -TYPE_ORDER.index(t) if t in TYPE_ORDER else -len(TYPE_ORDER)))


def parenthesised_acronym(sentence: str, mention: Mention) -> str | None:
    """ "IAEA" in "the International Atomic Energy Agency (IAEA)"."""
    match = PARENTHESISED.match(sentence, mention.end)
    return fold(match.group(1)) if match and is_acronym(match.group(1)) else None


def back_off_target(key: str, words_of: dict[str, list[str]], labels_of: dict[str, set[str]]) -> str | None:
    """The one person cluster whose surname (else first name) is this single word."""
    for position in (-1, 0):
        hits = [k for k, words in words_of.items() if len(words) > 1 and words[position] == key and "PERSON" in labels_of[k]]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return None  # two people share it: leave it alone
    return None


def acronym_target(key: str, acronyms: dict[str, list[str]]) -> str | None:
    hits = acronyms.get(key, [])
    return hits[0] if len(set(hits)) == 1 else None


def group_mentions(mentions: list[Mention], sentences: list[str], type_of_known: dict[str, str]) -> list[Entity]:
    """A document's mentions as entities, in order of first mention."""
    known: dict[str, Entity] = {}
    clusters: dict[str, list[Mention]] = {}
    for m in mentions:
        if m.known:
            known.setdefault(m.known, Entity(m.known, type_of_known[m.known], True)).mentions.append(m)
        elif fold(m.name):
            clusters.setdefault(fold(m.name), []).append(m)
    words_of = {key: key.split() for key in clusters}
    labels_of = {key: {m.label for m in group} for key, group in clusters.items()}
    acronyms: dict[str, list[str]] = {}
    for key, group in clusters.items():
        long_form = max((m.name for m in group), key=len)
        if acronym_of(long_form):
            acronyms.setdefault(fold(acronym_of(long_form)), []).append(key)
        for m in group:
            inner = parenthesised_acronym(sentences[m.sentence], m)
            if inner and inner != key:
                acronyms.setdefault(inner, []).append(key)
    merged_into: dict[str, str] = {}
    people: set[str] = set()
    for key, group in clusters.items():
        if len(words_of[key]) != 1:
            continue
        if any(is_acronym(m.name) for m in group):
            target = acronym_target(key, acronyms)
        elif labels_of[key] & BACK_OFF_LABELS:
            target = back_off_target(key, words_of, labels_of)
            if target:
                people.add(target)
        else:
            target = None
        if target and target != key:
            merged_into[key] = target
    for key, target in merged_into.items():
        clusters[target].extend(clusters[key])
    entities = list(known.values())
    for key, group in clusters.items():
        if key in merged_into:
            continue
        group.sort(key=lambda m: (m.sentence, m.start))
        name = max((m.name for m in group), key=lambda n: (len(n.split()), len(n)))
        entities.append(Entity(name, voted_type(group, key in people), False, group))
    for e in entities:
        e.mentions.sort(key=lambda m: (m.sentence, m.start))
    return sorted(entities, key=lambda e: (e.mentions[0].sentence, e.mentions[0].start))


def repeated_names(entity: Entity, people: dict[str, int]) -> list[str]:
    """The forms of an entity worth finding again where the recogniser missed them: its names
    as written, and a person's surname when no other person in the document has it."""
    forms = {m.name for m in entity.mentions if m.found and len(m.name) > 2}
    if entity.type == "PERSON":
        surname = entity.name.split()[-1]
        if len(entity.name.split()) > 1 and people.get(fold(surname), 0) == 1 and len(surname) > 2:
            forms.add(surname)
    return sorted(forms, key=len, reverse=True)


def propagate(entities: list[Entity], sentences: list[str]) -> None:
    """Add the mentions the recogniser missed of names it found elsewhere in the document (one
    name, one meaning per document): spaCy's small model misses many sentence-initial surnames."""
    surnames = Counter(fold(e.name.split()[-1]) for e in entities if e.type == "PERSON" and len(e.name.split()) > 1)
    taken: dict[int, list[tuple[int, int]]] = {}
    for m in (m for e in entities for m in e.mentions):
        taken.setdefault(m.sentence, []).append((m.start, m.end))
    for e in entities:
        if e.known:
            continue  # the alias table's search already found every form of a configured entity
        forms = repeated_names(e, surnames)
        if not forms:
            continue
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(f) for f in forms) + r")(?!\w)")
        for index, sentence in enumerate(sentences):
            for match in pattern.finditer(sentence):
                span = (match.start(), match.end())
                if any(a < span[1] and span[0] < b for a, b in taken.get(index, [])):
                    continue
                taken.setdefault(index, []).append(span)
                e.mentions.append(Mention(index, span[0], span[1], match.group(), match.group(), e.type, None, found=True))
        e.mentions.sort(key=lambda m: (m.sentence, m.start))
