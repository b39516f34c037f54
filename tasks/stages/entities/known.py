"""The alias table: the config's known entities, by every name they go by.

Their names and aliases are also searched for in the text (case-sensitively, on word
boundaries, longest first), so a configured target is judged even where the recogniser
misses it ("the West")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks.config import KnownEntity
from tasks.stages.entities.names import bare_name, fold

TYPE_OF_KIND = {"country": "GPE", "organisation": "ORG", "person": "PERSON", "group": "NORP", "other": "MISC"}
METONYM_TYPES = frozenset({"GPE", "ORG", "FAC", "LOC"})  # never PERSON: George Washington is no country


@dataclass(frozen=True)
class AliasMatch:
    name: str  # the known entity's name
    surface: str  # the text as written
    start: int
    end: int  # end-exclusive character offset in the sentence


class AliasTable:
    def __init__(self, known: list[KnownEntity]):
        self.type_of = {entry.name: TYPE_OF_KIND[entry.kind] for entry in known}
        self._written: dict[str, str] = {}  # each form as written -> its entity's name (the first entry wins)
        self._by_metonym: dict[str, str] = {}
        for entry in known:
            for form in entry.surface_forms:
                self._written.setdefault(form, entry.name)
            for form in entry.metonyms:
                self._by_metonym.setdefault(fold(bare_name(form)), entry.name)
        self._by_alias: dict[str, str] = {}
        for form, name in self._written.items():
            self._by_alias.setdefault(fold(bare_name(form)), name)
        forms = sorted(self._written, key=len, reverse=True)  # U.S.A. before U.S., United Nations before UN
        self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(f) for f in forms) + r")(?!\w)") if forms else None

    def name_for(self, name: str, label: str) -> str | None:
        """The known entity a found name stands for: by alias, or by metonym where the
        recogniser calls it a place or an organisation."""
        key = fold(name)
        if key in self._by_alias:
            return self._by_alias[key]
        return self._by_metonym.get(key) if label in METONYM_TYPES else None

    def find(self, sentence: str) -> list[AliasMatch]:
        """Every known name or alias written in the sentence."""
        if self._pattern is None:
            return []
        return [AliasMatch(self._written[m.group()], m.group(), m.start(), m.end()) for m in self._pattern.finditer(sentence)]
