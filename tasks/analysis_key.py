"""The analysis key (`analysis_sha256`): what decides the content of a result row.

It covers exactly what computes a row: the settings that change results (each setting
declares it in the config schema), the models' weights, and the code of the analysis,
which is every `tasks` module that the stages' computations import, directly or not.
That code counts through Python's AST with docstrings left out, so comments, docstrings
and formatting never re-key the dataset, and neither do edits to the bookkeeping
(commit, recovery, cache), the flows, the CLI or the training code, which no stage imports.

Library versions are recorded in every run record but are not part of the key: an
upgrade of numpy or prefect must not re-analyse a dataset's history. `newsflow run
--reanalyze` analyses documents again when a library upgrade should show in the rows."""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import tasks

PACKAGE = "tasks"
# Settings count by their values (config.result_settings), not by the schema's code.
NOT_ANALYSIS = frozenset({"tasks.config"})


def package_root() -> Path:
    """The folder that holds the `tasks` package (the checkout, or site-packages)."""
    return Path(tasks.__file__).resolve().parent.parent


def module_file(module: str, root: Path) -> Path | None:
    """The source file of a module of the package under `root`, or None when there is none."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, module: str, root: Path) -> set[str]:
    """The package's modules a source file imports anywhere in it (inside functions too)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*parts, base] if base else parts)
            # `from tasks.models import encoder` imports a module; `from tasks.arrow import row_ranges` a name
            names = [f"{base}.{alias.name}" if module_file(f"{base}.{alias.name}", root) else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if name == PACKAGE or name.startswith(PACKAGE + "."))
    return found


def analysis_modules(entry_modules: Iterable[str], root: Path | None = None) -> list[str]:
    """The entry modules and every package module they import, transitively, but NOT_ANALYSIS."""
    root = root or package_root()
    pending, seen = [m for m in entry_modules if m not in NOT_ANALYSIS], set()
    while pending:
        module = pending.pop()
        if module in seen or module in NOT_ANALYSIS:
            continue
        path = module_file(module, root)
        if path is None:
            continue
        seen.add(module)
        pending.extend(imported_modules(path, module, root) - seen)
    return sorted(seen)


def without_docstrings(tree: ast.AST) -> ast.AST:
    """The tree with every module, class and function docstring removed."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def normalised_source(path: Path) -> str:
    """A source file as its AST without docstrings: comments and formatting do not show."""
    return ast.dump(without_docstrings(ast.parse(path.read_text(encoding="utf-8"))), annotate_fields=False, include_attributes=False)


def analysis_code_digest(entry_modules: Iterable[str], root: Path) -> str:
    """sha256 over the normalised source of the analysis modules of the package under `root`."""
    digest = hashlib.sha256()
    for module in analysis_modules(entry_modules, root):
        digest.update(module.encode() + b"\0" + normalised_source(module_file(module, root)).encode() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=8)
def code_digest(entry_modules: tuple[str, ...]) -> str:
    """The analysis code's digest for the installed package, read once per process: the
    code a process runs is the code it loaded."""
    return analysis_code_digest(entry_modules, package_root())


def analysis_fingerprint(settings: dict[str, Any], models: dict[str, Any], code: str) -> str:
    """The analysis key from the result settings the stages read, the run's model provenance
    and the analysis code's digest. Rows of the same document under the same key are the
    same rows, so the output keeps one of them; a changed setting, model or code adds new rows."""
    material = {
        "settings": settings,
        "models": {name: model.get("weights_sha256") or model.get("id") for name, model in sorted(models.items())},
        "code": code,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
