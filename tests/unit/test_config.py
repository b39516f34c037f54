"""The config schema: the embedded default loads, overrides apply, bad keys are named."""

from __future__ import annotations

import pytest

from tasks.config import ConfigError, load_config, parse_override


def test_embedded_default_loads_with_targets_and_aliases():
    config = load_config()
    united_states = next(t for t in config.entities.known if t.name == "United States")
    assert {"U.S.", "US", "America"} <= set(united_states.aliases) and "Washington" in united_states.metonyms
    assert config.stance.targets == "both"
    assert config.summary.sentences == 3 and config.input.paths == ["data/samples"]


def test_overrides_replace_file_values_and_change_the_hash():
    default = load_config()
    changed = load_config(overrides={"summary.sentences": 5, "output.root": "/tmp/x"})
    assert changed.summary.sentences == 5 and changed.output.root == "/tmp/x"
    assert changed.sha256() != default.sha256()
    assert load_config().sha256() == default.sha256()


def test_unknown_key_is_named_with_its_path(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[summary]\nsentences = 3\nlenght = 4\n")
    with pytest.raises(ConfigError, match=r"summary\.lenght: unknown key"):
        load_config(bad)


def test_bad_value_names_the_key_and_what_is_allowed():
    with pytest.raises(ConfigError, match=r"summary\.sentences: .*greater than or equal to 1"):
        load_config(overrides={"summary.sentences": 0})
    with pytest.raises(ConfigError, match=r"output\.compression: .*'zstd'"):
        load_config(overrides={"output.compression": "lz5"})
    with pytest.raises(ConfigError, match=r"input\.extensions: .*unsupported \['\.docx'\]"):
        load_config(overrides={"input.extensions": [".docx"]})


def test_target_in_a_nested_list_is_named_by_index(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[entities.known]]\nname = "X"\nkind = "planet"\n')
    with pytest.raises(ConfigError, match=r"entities\.known\.0\.kind"):
        load_config(bad)


def test_missing_file_and_invalid_toml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[run\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_parse_override_reads_toml_values_else_text():
    assert parse_override("run.shard_size=20") == ("run.shard_size", 20)
    assert parse_override('clean.languages=["en", "fr"]') == ("clean.languages", ["en", "fr"])
    assert parse_override("output.root=out/dir") == ("output.root", "out/dir")
    with pytest.raises(ConfigError):
        parse_override("no-equals-sign")


def test_extensions_are_normalised_before_they_are_checked():
    assert load_config(overrides={"input.extensions": ["TXT", "md", ".Html"]}).input.extensions == [".txt", ".md", ".html"]


def test_a_config_extends_another_and_replaces_only_what_it_sets(tmp_path):
    from tasks.config import PROJECT_ROOT

    mine = tmp_path / "mine.toml"
    mine.write_text(f'extends = "{PROJECT_ROOT / "configs" / "default.toml"}"\n[summary]\nsentences = 5\n[runtime]\ndevice = "cpu"\n')
    config = load_config(mine)
    assert config.summary.sentences == 5 and config.summary.lead_weight == load_config().summary.lead_weight
    assert config.stance.targets == load_config().stance.targets and config.runtime.device == "cpu"
    loop = tmp_path / "loop.toml"
    loop.write_text('extends = "loop.toml"\n')
    with pytest.raises(ConfigError, match="extends it back"):
        load_config(loop)


@pytest.mark.parametrize("name", ["hub-models.toml", "gpu.toml"])
def test_shipped_example_configs_validate(name):
    from tasks.config import PROJECT_ROOT

    config = load_config(PROJECT_ROOT / "configs" / name)
    assert config.summary.kind == "abstractive" and config.sentiment.kind == "classifier" and config.stance.kind == "nli"
    assert config.runtime.allow_downloads and len(config.entities.known) == 20


def test_named_schedules_need_exactly_one_timing():
    config = load_config(
        None, {"schedules": [{"name": "hourly", "cron": "0 * * * *"}, {"name": "often", "interval": 600, "overrides": {"input.paths": ["data/drop"]}}]}
    )
    assert [s.name for s in config.schedules] == ["hourly", "often"] and config.schedules[1].overrides["input.paths"] == ["data/drop"]
    with pytest.raises(ConfigError, match="exactly one of cron and interval"):
        load_config(None, {"schedules": [{"name": "both", "cron": "0 * * * *", "interval": 60}]})
    with pytest.raises(ConfigError, match="schedules.0.name"):
        load_config(None, {"schedules": [{"name": "has space", "interval": 60}]})


def test_the_onnx_encoder_needs_spacy_to_find_names():
    with pytest.raises(ConfigError, match=r"entities\.recogniser = 'encoder' reads token states the ONNX encoder does not give"):
        load_config(overrides={"encoder.backend": "onnx"})
    assert load_config(overrides={"encoder.backend": "onnx", "entities.recogniser": "spacy"}).entities.recogniser == "spacy"
