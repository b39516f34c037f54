"""The files newsflow ships besides its code: the configs (`configs/*.toml`, the embedded
default among them) and the trained heads (`data/models/<head>/`).

They stay where users see them in the repository; pyproject.toml maps those two folders
into the wheel as the data packages `tasks.resources.configs` and `tasks.resources.models`
(`[tool.setuptools.package-dir]`), and an installed newsflow reads them with
importlib.resources. In a checkout (pytest, an editable install) those packages do not
import, and the folders themselves are used: one copy of each file either way."""

from __future__ import annotations

from importlib import resources, util
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout's root; in an installed wheel, site-packages
CHECKOUT_FOLDERS = {"configs": PROJECT_ROOT / "configs", "models": PROJECT_ROOT / "data" / "models"}
# What the shipped configs call the heads folder: `stance.head = "data/models/stance-tuned"`.
HEADS_PREFIX = ("data", "models")


def packaged(folder: str, *parts: str) -> Path:
    """A shipped file or folder: `packaged("configs", "default.toml")`, `packaged("models", "stance-tuned")`."""
    if folder not in CHECKOUT_FOLDERS:
        raise ValueError(f"no packaged folder {folder!r}; known: {sorted(CHECKOUT_FOLDERS)}")
    package = f"{__name__}.{folder}"
    try:
        root = resources.files(package)
    except ModuleNotFoundError:  # a checkout: the files lie at the project root
        return CHECKOUT_FOLDERS[folder].joinpath(*parts)
    if not parts:  # the folder itself: a namespace package's files() is no Path, its one location is
        return Path(next(iter(util.find_spec(package).submodule_search_locations)))
    target = root.joinpath(*parts)
    if not isinstance(target, Path):  # e.g. a zipped install: the heads are read with numpy/safetensors, which need paths
        raise RuntimeError(f"newsflow's packaged {folder} are not files on disk ({target!r}); install newsflow as a wheel")
    return target


def trained_heads_folder() -> Path:
    """Where `newsflow train` writes by default: the checkout's data/models (beside the shipped
    heads), or data/models under the working directory for an installed newsflow (never
    into site-packages)."""
    return CHECKOUT_FOLDERS["models"] if (PROJECT_ROOT / "pyproject.toml").is_file() else Path("data") / "models"
