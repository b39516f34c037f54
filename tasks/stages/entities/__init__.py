"""Named entities: found (recognise), named (names, demonyms, known) and grouped (grouping)
per document; the stage itself is in stage.py."""

from tasks.stages.entities.stage import entities_shard

__all__ = ["entities_shard"]
