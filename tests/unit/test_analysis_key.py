"""The analysis key covers exactly what computes a row: the settings that change results,
the models' weights and the analysis code, with comments and docstrings left out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from flows.stages import STAGE_BY_NAME, STAGES, analysis_entry_modules, analysis_settings, declared_result_settings, stage_settings
from tasks import config as config_module
from tasks.analysis_key import analysis_code_digest, analysis_fingerprint, analysis_modules, package_root
from tasks.config import changes_results, load_config

ENTRY = analysis_entry_modules()


@pytest.fixture
def code_copy(tmp_path: Path) -> Path:
    """A copy of the `tasks` and `flows` packages to edit."""
    for package in ("tasks", "flows"):
        shutil.copytree(package_root() / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def edited(root: Path, relative: str, change) -> str:
    path = root / relative
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    return analysis_code_digest(ENTRY, root)


def test_the_analysis_code_is_what_the_stages_import_and_nothing_else():
    modules = set(analysis_modules(ENTRY))
    assert {
        "tasks.stages.encode",
        "tasks.stages.summarize",
        "tasks.stages.stance",
        "tasks.arrow",
        "tasks.models.encoder",
        "tasks.models.heads",
        "tasks.records",
    } <= modules
    assert not [m for m in modules if m.startswith(("tasks.dataset", "tasks.training", "tasks.evaluation", "flows"))], modules
    assert "tasks.config" not in modules, "settings count by their values, not the schema's code"


def test_comments_docstrings_and_formatting_do_not_change_the_key(code_copy):
    before = analysis_code_digest(ENTRY, code_copy)
    for module in analysis_modules(ENTRY, code_copy):
        path = code_copy.joinpath(*module.split("."))
        path = path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
        text = path.read_text(encoding="utf-8")
        path.write_text("# a comment fixed\n\n" + text + "\n\n# trailing note\n", encoding="utf-8")
    assert analysis_code_digest(ENTRY, code_copy) == before
    assert edited(code_copy, "tasks/stages/summarize.py", lambda t: t.replace("LEAD_DECAY = 3.0", "LEAD_DECAY   =   (3.0)  # spaced")) == before
    assert edited(code_copy, "tasks/stages/summarize.py", lambda t: t.replace('"""Summarize stage', '"""The summarize stage', 1)) == before


@pytest.mark.parametrize(
    "relative",
    [
        "tasks/dataset/commit.py",
        "tasks/dataset/recovery.py",
        "tasks/dataset/shard_cache.py",
        "flows/cli.py",
        "flows/report.py",
        "tasks/training/train_heads.py",
        "tasks/training/finetune_stance.py",
        "tasks/config.py",
    ],
)
def test_bookkeeping_cli_report_and_training_edits_do_not_change_the_key(code_copy, relative):
    before = analysis_code_digest(ENTRY, code_copy)
    assert edited(code_copy, relative, lambda t: t + "\n\ndef added_by_an_edit() -> int:\n    return 42\n") == before


@pytest.mark.parametrize(
    "relative, old, new",
    [
        ("tasks/stages/summarize.py", "LEAD_DECAY = 3.0", "LEAD_DECAY = 3.5"),  # a stage's own computation
        ("tasks/arrow.py", "reshape(-1, dim)", "reshape(-1, dim).copy()"),  # a helper every head reads through
        ("tasks/models/encoder.py", "WINDOW_TOKENS = 5", "WINDOW_TOKENS = 6"),  # a model module
    ],
)
def test_an_edit_to_computing_code_changes_the_key(code_copy, relative, old, new):
    before = analysis_code_digest(ENTRY, code_copy)
    assert old in (code_copy / relative).read_text(encoding="utf-8")
    assert edited(code_copy, relative, lambda t: t.replace(old, new, 1)) != before


def test_only_settings_that_change_results_enter_the_key():
    base = load_config(None)
    same = analysis_settings(base)
    for key, value in {
        "encoder.threads": 1,
        "encoder.max_tokens_per_batch": 1024,
        "run.shard_size": 7,
        "run.reanalyze": True,
        "output.compression": "snappy",
        "runtime.device": "cpu",
        "summary.batch_size": 2,
    }.items():
        assert analysis_settings(load_config(None, {key: value})) == same, key
    for key, value in {
        "summary.sentences": 2,
        "clean.min_words": 10,
        "encoder.max_length": 128,
        "stance.templates": {"favor": "Pro {target}.", "against": "Anti {target}.", "neutral": "About {target}."},
    }.items():
        assert analysis_settings(load_config(None, {key: value})) != same, key
    models = {"encoder": {"weights_sha256": "a"}}
    assert analysis_fingerprint(same, models, "code") != analysis_fingerprint(same, {"encoder": {"weights_sha256": "b"}}, "code")
    assert analysis_fingerprint(same, models, "code") != analysis_fingerprint(same, models, "other code")


def test_every_setting_declares_whether_it_changes_results():  # the top level holds sections, not settings
    sections = [
        obj
        for obj in vars(config_module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == config_module.__name__
        and obj.model_fields
        and obj is not config_module.PipelineConfig
    ]
    assert len(sections) > 10
    for section in sections:
        for name in section.model_fields:
            assert isinstance(changes_results(section, name), bool), f"{section.__name__}.{name}"


def test_a_stage_sees_only_the_settings_it_declares():
    config = load_config(None)
    encode = next(s for s in STAGES if s.name == "encode")
    view = stage_settings(encode, config)
    assert view.encoder.max_length == config.encoder.max_length and view.stance.targets == config.stance.targets
    with pytest.raises(AttributeError):
        view.summary  # noqa: B018 - encode does not declare the summary section
    with pytest.raises(AttributeError):
        view.stance.templates  # noqa: B018 - nor the NLI templates, which only the stance stage reads
    assert "stance.templates" not in declared_result_settings(encode, config)


def covers(settings: tuple[str, ...], path: str) -> bool:
    return path in settings or path.partition(".")[0] in settings


def test_each_declared_stage_reads_declared_stages_and_cached_stages_key_on_all_they_read():
    """A cached stage is keyed by its first upstream shard and its settings: any other stage
    it reads must be computed from that same shard with settings it declares too."""
    seen = {"ingest"}
    for stage in STAGES:
        assert set(stage.upstream) <= seen, f"{stage.name} reads a stage that has not run yet"
        if stage.cached:
            first = stage.upstream[0]
            for other in (STAGE_BY_NAME[name] for name in stage.upstream[1:]):
                assert other.upstream == (first,), f"{stage.name} reads {other.name}, which its cache key does not follow"
                assert all(covers(stage.settings, path) for path in other.settings), f"{stage.name}'s key misses settings of {other.name}"
        for path in stage.settings:
            section, _, key = path.partition(".")
            assert section in type(load_config(None)).model_fields and (not key or key in type(getattr(load_config(None), section)).model_fields)
        seen.add(stage.name)
