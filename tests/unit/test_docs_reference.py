"""The generated reference pages (docs/reference/configuration.md and cli.md) are what
`python docs/generate_reference.py` writes from the code today."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("generate_reference", REPO_ROOT / "docs" / "generate_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


generator = load_generator()
STALE = "is out of date: run `python docs/generate_reference.py` and commit the result"


@pytest.mark.parametrize(
    "page, build", [(generator.CONFIGURATION_PAGE, generator.configuration_page), (generator.CLI_PAGE, generator.cli_page)], ids=["configuration", "cli"]
)
def test_the_committed_page_equals_a_fresh_one(page: Path, build):
    assert page.exists(), f"{page.relative_to(REPO_ROOT)} is missing: run `python docs/generate_reference.py`"
    assert page.read_text(encoding="utf-8") == build(), f"{page.relative_to(REPO_ROOT)} {STALE}"


def test_every_config_key_is_on_the_configuration_page():
    """Every key of every section, nested ones included, has its row."""
    from tasks.config import PipelineConfig

    page = generator.configuration_page()

    def keys(model, prefix):
        for name, field in model.model_fields.items():
            yield prefix, name
            nested = field.annotation if generator.is_model(field.annotation) else generator.list_item_model(field.annotation)
            if nested is not None:
                yield from keys(nested, f"{prefix}.{name}")

    for name, field in PipelineConfig.model_fields.items():
        model = generator.list_item_model(field.annotation) or field.annotation
        for section, key in keys(model, name):
            heading = re.search(rf"^#+ `\[\[?{re.escape(section)}\]\]?`$", page, re.MULTILINE)
            assert heading, f"no heading for [{section}]"
            block = page[heading.end() :].split("\n#", 1)[0]
            assert f"| `{key}` |" in block, f"{section}.{key} has no row"


def test_every_command_is_on_the_cli_page():
    page = generator.cli_page()
    for command in (
        "run",
        "train",
        "runs",
        "show",
        "serve",
        "trigger",
        "evaluate stance",
        "evaluate sentiment",
        "evaluate summary",
        "server start",
        "server stop",
        "server status",
    ):
        assert f"`newsflow {command}`" in page


def test_pages_name_no_path_outside_the_repository():
    """The pages are the same on every machine, and point at nothing beside the checkout:
    data sets are passed by path (`--train`, `--data`), never looked for next to it."""
    for text in (generator.configuration_page(), generator.cli_page()):
        assert str(REPO_ROOT) not in text and str(REPO_ROOT.parent) not in text
        assert "../" not in text, "a help text or description names a path outside the repository"


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n", encoding="utf-8")
    monkeypatch.setattr(generator, "pages", lambda: {stale: "new\n"})
    monkeypatch.setattr(generator, "REPO_ROOT", tmp_path)
    assert generator.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "old\n"
    assert generator.main([]) == 0 and stale.read_text(encoding="utf-8") == "new\n"
    assert generator.main(["--check"]) == 0
