"""Loading any Hugging Face model the way every backend here must: from a local folder or
(only when the config allows downloads) a hub id, safetensors only, never remote code,
once per process, on the configured device and precision, with provenance for the run
record (id, revision, weight sha256, device, dtype)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tasks.models.encoder import has_native_bf16, weights_sha256

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_LOCK = threading.Lock()
_LOADED: dict[tuple, LoadedModel] = {}


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded, with what to do about it."""


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    model_id: str
    folder: Path
    revision: str | None
    device: torch.device
    dtype: str
    # One forward/generate at a time per model: shards in threads would only fight over it.
    lock: threading.Lock

    def provenance(self) -> dict[str, str | None]:
        # A hub snapshot's folder name is the commit it came from: more exact than the config's revision.
        revision = self.folder.name if self.folder.parent.name == "snapshots" else self.revision
        return {
            "id": self.model_id,
            "path": str(self.folder),
            "revision": revision,
            "weights_sha256": weights_sha256(self.folder),
            "device": str(self.device),
            "dtype": self.dtype,
        }


def resolve_device(device: str) -> torch.device:
    """`auto` is the first GPU when there is one, else the CPU; `cuda`/`cuda:N` must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"runtime.device = {device!r} but torch sees no CUDA device (torch {torch.__version__})")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> str:
    """`auto`: bf16 on a GPU that has it natively, fp16 on an older GPU, fp32 on the CPU (the
    CPU's own fast path is the encoder's `encoder.precision`, measured separately)."""
    if dtype != "auto":
        return dtype
    if device.type == "cuda":
        return "bf16" if has_native_bf16(device) else "fp16"
    return "fp32"


def looks_like_hub_id(model: str) -> bool:
    """'name' or 'org/name' as the hub spells ids (a path with more parts, or starting with
    '.', '/' or '~', is a folder)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        return False
    try:
        validate_repo_id(model)
    except HFValidationError:
        return False
    return True


def local_folder(model: str, allow_downloads: bool, revision: str | None) -> Path:
    """The folder that holds the model: a local path, or the hub cache (downloading only when allowed)."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder
    if not looks_like_hub_id(model):
        raise ModelLoadError(f"model folder not found: {model}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                model,
                revision=revision,
                local_files_only=not allow_downloads,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.spm", "*.tiktoken"],
            )
        )
    except LocalEntryNotFoundError as exc:
        raise ModelLoadError(
            f"model {model!r} is not a local folder and not in the Hugging Face cache; "
            + ("the hub could not be reached" if allow_downloads else "set runtime.allow_downloads = true to fetch it, or give a local folder")
        ) from exc
    except Exception as exc:  # noqa: BLE001  (network and hub errors come in many types)
        raise ModelLoadError(f"could not fetch {model!r} from the Hugging Face hub: {type(exc).__name__}: {exc}") from exc


def load_model(
    auto_class: Any, model: str, device: str = "auto", dtype: str = "auto", allow_downloads: bool = False, revision: str | None = None
) -> LoadedModel:
    """The model once per process for these settings, in eval mode on its device."""
    key = (auto_class.__name__, model, device, dtype, allow_downloads, revision)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load(auto_class, model, device, dtype, allow_downloads, revision)
        return _LOADED[key]


def _load(auto_class: Any, model: str, device: str, dtype: str, allow_downloads: bool, revision: str | None) -> LoadedModel:
    from transformers import AutoTokenizer

    folder = local_folder(model, allow_downloads, revision)
    if not list(folder.glob("*.safetensors")):
        raise ModelLoadError(f"{folder} has no .safetensors weights (pickled .bin weights are never loaded)")
    target = resolve_device(device)
    precision = resolve_dtype(dtype, target)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    loaded = auto_class.from_pretrained(str(folder), local_files_only=True, use_safetensors=True, trust_remote_code=False, dtype=DTYPES[precision])
    loaded.to(target).eval()
    return LoadedModel(loaded, tokenizer, model, folder, revision, target, precision, threading.Lock())
