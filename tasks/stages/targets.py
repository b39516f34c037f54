"""Finding the configured stance targets (by name or alias) inside sentences."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks.config import Target


@dataclass(frozen=True)
class Mention:
    target: str  # the target's canonical name
    surface: str  # the text as written
    start: int
    end: int  # end-exclusive character offset in the sentence


class TargetMatcher:
    """One compiled pattern for every surface form, longest first, so `U.S.A.` wins over
    `U.S.` and `United Nations` over `UN`. Case-sensitive: `US` the country, not `us`."""

    def __init__(self, targets: list[Target]):
        self._canonical: dict[str, str] = {}
        for target in targets:
            for form in target.surface_forms:
                self._canonical.setdefault(form, target.name)
        forms = sorted(self._canonical, key=len, reverse=True)
        self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(f) for f in forms) + r")(?!\w)") if forms else None

    def find(self, sentence: str) -> list[Mention]:
        if self._pattern is None:
            return []
        return [Mention(self._canonical[m.group()], m.group(), m.start(), m.end()) for m in self._pattern.finditer(sentence)]
