"""The fine-tuned stance head: MiniLM's top layers trained end to end on NewsMTSC.

The common encoder pass already runs every sentence through all six layers. This head
takes the hidden states *entering* the top `n_layers` layers (shared with that pass,
so nothing below is recomputed), adds a learned marker vector to the target mention's
tokens (marking the target without changing the text, which would break the sharing),
runs its own fine-tuned copy of the top layers over sentences that mention a target
only, and classifies [sentence mean; mention mean].

A head marks either the one mention it judges (`marking = "target"`: one pass of its
layers per mention) or every judged mention of the sentence at once (`"all-mentions"`:
one pass per sentence, each mention pooled from it; trained the same way, so the marker
says "a named entity" and the pooling says which one is judged). Probabilities are calibrated with a
temperature fitted on dev. An ensemble (`TunedStanceEnsemble`, card field "members")
holds several such heads trained with different seeds on the same split-layer states and
averages their calibrated probabilities; it answers the same calls as a single head.

Stored as safetensors (layer weights in fp16, the rest fp32) plus card.json/README.md."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from tasks.models.heads import WEIGHTS_FILE, read_card
from tasks.models.model_card import write_card

KIND = "tuned-top-layers"


MARKINGS = ("target", "all-mentions")


@dataclass
class MentionBatch:
    """Split-layer states of sentences, padded (one row per pass of the tuned layers), and
    the mentions judged in them (each pooled from its row)."""

    states: torch.Tensor  # (rows, tokens, hidden)
    attention: torch.Tensor  # (rows, tokens) 1 for real tokens
    marked: torch.Tensor  # (rows, tokens) 1 on the tokens that get the marker vector
    target: torch.Tensor  # (mentions, tokens) 1 on the judged mention's tokens
    row: torch.Tensor  # (mentions,) the row each mention sits in


def pad_rows(states: list[torch.Tensor], marked_tokens: list[list[int]], mentions: list[tuple[int, list[int]]]) -> MentionBatch:
    """A batch of sentence rows with their marked tokens, and (row, tokens) per judged mention."""
    width = max(s.shape[0] for s in states)
    hidden = states[0].shape[1]
    batch = MentionBatch(
        torch.zeros((len(states), width, hidden), dtype=torch.float32),
        torch.zeros((len(states), width), dtype=torch.long),
        torch.zeros((len(states), width), dtype=torch.float32),
        torch.zeros((len(mentions), width), dtype=torch.float32),
        torch.tensor([row for row, _ in mentions], dtype=torch.long),
    )
    for row, (s, tokens) in enumerate(zip(states, marked_tokens)):
        batch.states[row, : s.shape[0]] = s.float()
        batch.attention[row, : s.shape[0]] = 1
        batch.marked[row, tokens] = 1.0
    for k, (_, tokens) in enumerate(mentions):
        batch.target[k, tokens] = 1.0
    return batch


def pad_mentions(states: list[torch.Tensor], target_tokens: list[list[int]]) -> MentionBatch:
    """One row per mention, marking only that mention (how a "target" head reads)."""
    return pad_rows(states, target_tokens, list(enumerate(target_tokens)))


class TunedStanceHead(nn.Module):
    features = "split-layer token states"

    def __init__(self, base_model: nn.Module, n_layers: int, labels: list[str], dropout: float = 0.1, marking: str = "target"):
        super().__init__()
        if marking not in MARKINGS:
            raise ValueError(f"marking must be one of {MARKINGS}")
        self.marking = marking
        self.base_config = base_model.config
        self.n_layers = n_layers
        self.split_layer = int(base_model.config.num_hidden_layers) - n_layers
        # fp32 on the CPU whatever the shared encoder runs on: the head was trained so, and is small.
        self.layers = nn.ModuleList(copy.deepcopy(layer) for layer in base_model.encoder.layer[self.split_layer :]).float().cpu()
        hidden = int(base_model.config.hidden_size)
        self.marker = nn.Parameter(torch.zeros(hidden))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden, len(labels))
        self.register_buffer("temperature", torch.ones(()))
        self.labels = list(labels)
        self.card: dict = {}
        self.card_from_training: dict = {}  # written last by save(): what training knows best (method, command, seeds)

    def logits(self, batch: MentionBatch) -> torch.Tensor:
        hidden = batch.states + batch.marked.unsqueeze(-1) * self.marker
        mask = create_bidirectional_mask(config=self.base_config, inputs_embeds=hidden, attention_mask=batch.attention)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=mask)
        real = batch.attention.unsqueeze(-1).to(hidden.dtype)
        sentence = (hidden * real).sum(1) / real.sum(1).clamp(min=1)
        target = batch.target.unsqueeze(-1)
        mention = (hidden[batch.row] * target).sum(1) / target.sum(1).clamp(min=1)
        return self.classifier(self.dropout(torch.cat([sentence[batch.row], mention], dim=-1)))

    def predict_proba_states(self, batch: MentionBatch) -> np.ndarray:
        """Calibrated class probabilities for each mention in the batch."""
        self.eval()
        with torch.inference_mode():
            return torch.softmax(self.logits(batch) / self.temperature, dim=-1).numpy().astype(np.float32)

    def save(self, folder: Path) -> None:
        save_head(self, folder)


def save_head(head: nn.Module, folder: Path, extra_card: dict | None = None) -> None:
    """head.safetensors (the copied transformer layers in fp16, the rest fp32) plus the card."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, value in head.state_dict().items():
        # The copied transformer layers dominate the size; fp16 halves it at no measurable cost.
        store_half = name.startswith("layers.") or ".layers." in name
        tensors[name] = value.detach().to(torch.float16 if store_half else torch.float32).contiguous()
    save_file(tensors, str(folder / WEIGHTS_FILE))
    card = {**head.card, **head.card_from_training, **(extra_card or {})}
    write_card(folder, {**card, "kind": KIND, "labels": head.labels, "features": head.features, "tuned_layers": head.n_layers, "marking": head.marking})


class TunedStanceEnsemble(nn.Module):
    """Several tuned heads over the same split-layer states; the mean of their calibrated
    probabilities. Each member runs its own copy of the top layers, so the cost of the
    stance pass scales with the number of members (the shared lower layers run once)."""

    features = TunedStanceHead.features

    def __init__(self, members: list[TunedStanceHead]):
        super().__init__()
        if not members or len({(m.split_layer, tuple(m.labels), m.marking) for m in members}) != 1:
            raise ValueError("an ensemble needs one or more heads with the same split layer, labels and marking")
        self.members = nn.ModuleList(members)
        self.n_layers = members[0].n_layers
        self.split_layer = members[0].split_layer
        self.labels = list(members[0].labels)
        self.marking = members[0].marking
        self.card: dict = {}
        self.card_from_training: dict = {}

    def predict_proba_states(self, batch: MentionBatch) -> np.ndarray:
        """The members' calibrated probabilities, averaged."""
        return np.mean([m.predict_proba_states(batch) for m in self.members], axis=0).astype(np.float32)

    def save(self, folder: Path) -> None:
        save_head(self, folder, {"members": len(self.members)})


def load_tuned_stance_head(folder: Path, base_model: nn.Module) -> TunedStanceHead | TunedStanceEnsemble:
    """A single head, or an ensemble where the card names its "members" (a count)."""
    card = read_card(folder)
    tensors = {k: v.float() for k, v in load_file(str(folder / WEIGHTS_FILE)).items()}
    members = int(card.get("members", 0))
    marking = card.get("marking", "target")  # heads trained before the choice existed mark their target only
    if members:
        head: TunedStanceHead | TunedStanceEnsemble = TunedStanceEnsemble(
            [TunedStanceHead(base_model, int(card["tuned_layers"]), card["labels"], marking=marking) for _ in range(members)]
        )
    else:
        head = TunedStanceHead(base_model, int(card["tuned_layers"]), card["labels"], marking=marking)
    head.load_state_dict(tensors)
    head.card = card
    head.eval()
    return head
