"""Which models a run uses: ids and weight hashes, checked before any work starts."""

from __future__ import annotations

from tasks.config import PipelineConfig, resolve_resource
from tasks.models.backends import backend_provenance
from tasks.models.encoder import model_folder, weights_sha256
from tasks.models.heads import head_kind, head_sha256, read_card
from tasks.stages.encode import pipeline_encoder
from tasks.stages.entities.recognise import ner_provenance


def model_provenance(config: PipelineConfig) -> dict[str, dict[str, str]]:
    """Ids and weight hashes of every model the run uses; fails on a missing model, or on a
    head trained over another encoder's features (its output would be noise)."""
    encoder = model_folder(config.encoder.model)
    encoder_sha = weights_sha256(encoder)
    heads = {task: resolve_resource(getattr(config, task).head) for task in ("sentiment", "stance") if getattr(config, task).kind == "head"}
    for name, path in heads.items():
        trained_on = read_card(path).get("encoder_weights_sha256")
        if trained_on and trained_on != encoder_sha:
            raise ValueError(f"the {name} head {path} was trained on another encoder than {config.encoder.model}; retrain it with `newsflow train`")
    return {
        "encoder": {"id": config.encoder.model, "path": str(encoder), "weights_sha256": encoder_sha, **pipeline_encoder(config).provenance()},
        "ner": ner_provenance(config.entities),
        **backend_provenance(config),  # a Hugging Face backend stands in for its task's head
        **{name: {"id": path.name, "path": str(path), "kind": head_kind(path), "weights_sha256": head_sha256(path)} for name, path in heads.items()},
    }
