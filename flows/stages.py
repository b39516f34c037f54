"""The one declaration of the pipeline's shard stages, in the order they run on a shard.

Each entry names the stage, the computation it runs (a plain function in `tasks/stages/`,
or a bookkeeping step in `tasks/dataset/`), the stages whose shard outputs it reads, the
config it reads and whether its results go through the shard cache. From this list come
the wiring of the shard chain (flows/pipeline.py), the task that runs each stage
(flows/shell.py), the shard-cache keys, the analysis key, and the run record's per-stage
counts and times. Adding a stage means its module under `tasks/stages/` and one entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from tasks.config import PipelineConfig, changes_results, result_settings
from tasks.records import StageOutput
from tasks.stages.clean import clean_records
from tasks.stages.encode import encode_shard
from tasks.stages.sentiment import sentiment_shard
from tasks.stages.stance import stance_shard
from tasks.stages.summarize import summarize_shard

SOURCE = "ingest"  # what the first stage reads: ingest's shards, one file group at a time


@dataclass(frozen=True)
class Input:
    """One table a stage reads: a stage's shard output (`part`: one of its further tables), and which columns."""

    stage: str
    columns: tuple[str, ...] | None = None
    part: str | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    compute: Callable[..., StageOutput] | None  # tables in, tables out; None: a bookkeeping step (flows/shell.py)
    inputs: tuple[Input, ...]
    settings: tuple[str, ...] = ()  # config sections ("summary") or single keys ("stance.targets") it reads
    cached: bool = False  # its results go through the shard cache, keyed by its first input and the settings above that change results
    uses_models: bool = True  # whether the models' weights are part of its cache key
    reads_earlier_shards: bool = False  # it also reads its first input of every earlier shard of the run
    writes: tuple[tuple[str, str | None], ...] = ()  # (output table, part: None for its main table) it becomes as it is (rows keyed by doc_id)

    @property
    def upstream(self) -> tuple[str, ...]:
        """The stages it depends on, each once, in the order first read."""
        return tuple(dict.fromkeys(i.stage for i in self.inputs))


SENTENCE_COLUMNS = ("doc_id", "sentence_index", "text", "embedding")
# What finds names and decides which mentions are judged: encode reads it, and the stance
# stage, which reads encode's mentions, declares it in its key too.
ENTITY_SETTINGS = ("entities", "stance.targets", "stance.min_mentions")

STAGES: tuple[Stage, ...] = (
    Stage("clean", clean_records, (Input(SOURCE),), ("clean",), cached=True, uses_models=False),
    Stage("deduplicate", None, (Input("clean"),), reads_earlier_shards=True),
    # Encode also finds the names in its own pass, groups them into entities and judges the
    # chosen mentions with a tuned stance head: each reads the pass's token states.
    Stage(
        "encode",
        encode_shard,
        (Input("deduplicate", ("doc_id", "sentences")),),
        ("encoder", "stance.kind", "stance.head", *ENTITY_SETTINGS, "runtime"),
        cached=True,
        writes=(("entities", "entities"),),
    ),
    Stage("summarize", summarize_shard, (Input("encode", ("doc_id", "text", "embedding")),), ("summary", "runtime"), cached=True),
    Stage("sentiment", sentiment_shard, (Input("encode", SENTENCE_COLUMNS),), ("sentiment", "encoder.max_length", "runtime"), cached=True),
    Stage(
        "stance",
        stance_shard,
        (Input("encode", SENTENCE_COLUMNS), Input("encode", part="mentions")),
        ("stance", "entities", "encoder.max_length", "runtime"),  # the stance section holds the rest of ENTITY_SETTINGS
        cached=True,
        writes=(("stances", None), ("mentions", "mentions")),
    ),
)
# The write stage joins the per-document and per-sentence results into `documents` and
# `sentences`, and stages each table a stage `writes` as it is.
JOINED = (Input("deduplicate"), Input("encode"), Input("summarize"), Input("sentiment"))
WRITTEN = tuple((table, Input(stage.name, part=part)) for stage in STAGES for table, part in stage.writes)  # output table -> what it is
STAGES += (Stage("write", None, (*JOINED, *(i for _, i in WRITTEN))),)
STAGE_BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
CACHED_STAGES = tuple(stage.name for stage in STAGES if stage.cached)


def stage_settings(stage: Stage, config: PipelineConfig) -> SimpleNamespace:
    """The config as a stage's computation sees it: only the sections and keys it declares
    (`settings.encoder.max_length`), so a stage cannot read a setting its cache key misses."""
    view: dict[str, Any] = {}
    for path in stage.settings:
        section, _, key = path.partition(".")
        if not key:
            view[section] = getattr(config, section)
        else:
            view.setdefault(section, SimpleNamespace())
            setattr(view[section], key, getattr(getattr(config, section), key))
    return SimpleNamespace(**view)


def declared_result_settings(stage: Stage, config: PipelineConfig) -> dict[str, Any]:
    """The settings a stage declares that change results, by path: its shard-cache key's settings."""
    out: dict[str, Any] = {}
    for path in stage.settings:
        section, _, key = path.partition(".")
        value = getattr(config, section)
        if not key:
            out[path] = result_settings(value)
        elif changes_results(type(value), key):
            out[path] = value.model_dump(mode="json", include={key})[key]
    return out


def analysis_settings(config: PipelineConfig) -> dict[str, Any]:
    """Every setting some stage reads that changes results: the settings part of the analysis key."""
    return {path: value for stage in STAGES for path, value in declared_result_settings(stage, config).items()}


def analysis_entry_modules() -> tuple[str, ...]:
    """The modules of the stages' computations: the analysis code is what they import."""
    return tuple(sorted({stage.compute.__module__ for stage in STAGES if stage.compute is not None}))
