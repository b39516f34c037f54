"""newsflow installed from its wheel, not from a checkout: the embedded default config and
the shipped heads travel inside the package (tasks/resources), so `newsflow run` works from
any folder. The slow test builds the wheel, installs it into a fresh virtual environment
(its dependencies come from this one's site-packages) and runs the samples."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the wheel is built from (pyproject.toml names the README as the long description).
SOURCES = ("pyproject.toml", "README.md", "flows", "tasks", "configs", "data/models")


def test_every_package_is_in_the_wheel_list():
    """pyproject.toml lists the packages (`packages.find` cannot add the two data packages
    mapped from configs/ and data/models/): a new package must be added there."""
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(init.parent.relative_to(REPO_ROOT).parts) for top in ("flows", "tasks") for init in (REPO_ROOT / top).rglob("__init__.py")}
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert {"tasks.resources.configs", "tasks.resources.models"} <= listed


def test_shipped_heads_and_configs_resolve_from_any_folder(tmp_path, monkeypatch):
    from tasks.config import DEFAULT_CONFIG_PATH, load_config, resolve_resource

    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert DEFAULT_CONFIG_PATH.is_file()
    for head in (config.stance.head, config.sentiment.head, "data/models/stance-linear"):
        assert (resolve_resource(head) / "head.safetensors").is_file(), head
    assert resolve_resource("data/models/no-such-head") == Path("data/models/no-such-head"), "a path found nowhere is named as written"
    (tmp_path / "data" / "models" / "stance-tuned").mkdir(parents=True)
    assert resolve_resource("data/models/stance-tuned") == Path("data/models/stance-tuned"), "the working directory comes first"
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "default.toml"\n[summary]\nsentences = 5\n')
    extended = load_config(mine)
    assert extended.summary.sentences == 5 and extended.stance.targets == config.stance.targets


def parent_site_packages() -> list[str]:
    """This environment's site-packages (torch, prefect, ...), but not its editable newsflow:
    a plain path in a .pth file is added to sys.path without running that folder's .pth files."""
    return [p for p in site.getsitepackages() if Path(p).is_dir()]


@pytest.mark.slow
def test_the_wheel_runs_the_samples_from_an_unrelated_folder(tmp_path):
    source = tmp_path / "source"
    for name in SOURCES:
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy2
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        copy(REPO_ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("newsflow-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "tasks/resources/configs/default.toml",
        "tasks/resources/models/stance-tuned/head.safetensors",
        "tasks/resources/models/sentiment-linear/card.json",
        "flows/cli.py",
    } <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    own_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    (own_site / "_newsflow_test_dependencies.pth").write_text("\n".join(parent_site_packages()) + "\n")
    installed = subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PREFECT_API_URL")},
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "NEWSFLOW_HOME": str(tmp_path / "newsflow-home"),
    }
    where = subprocess.run(
        [str(python), "-c", "import tasks.config as c; print(c.__file__); print(c.DEFAULT_CONFIG_PATH)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    module, default_config = where.stdout.split()
    assert Path(module).is_relative_to(own_site) and Path(default_config).is_relative_to(own_site), where.stdout + where.stderr

    out = tmp_path / "out"
    run = subprocess.run(
        [str(venv / "bin" / "newsflow"), "run", "--input", str(SAMPLES), "--output", str(out)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert list((out / "documents").glob("run_date=*/*.parquet"))
    assert list(elsewhere.iterdir()) == [], "nothing is written to the working directory"
