"""Tiny, randomly initialised Hugging Face models, built and saved by the tests themselves
(nothing is downloaded): a BART summariser, a BERT sentiment classifier and a BERT
NLI-shaped classifier, all with the packaged MiniLM's WordPiece tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration, BertConfig, BertForSequenceClassification

from tasks.models.encoder import PACKAGED_MINILM, model_folder

# A wide initialisation, so that random models give outputs that differ from input to input.
TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 128, "initializer_range": 0.5}


@dataclass(frozen=True)
class TinyModels:
    bart: Path
    sentiment: Path  # labels NEG / NEU / POS: need a config mapping
    two_label_sentiment: Path  # labels negative / positive
    nli: Path  # labels entailment / neutral / contradiction


def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(str(model_folder(PACKAGED_MINILM)), local_files_only=True)


def save(model, tokenizer, folder: Path) -> Path:
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_bart(folder: Path, tokenizer, **token_ids: int | None) -> Path:
    """A one-layer BART of width 16 over `tokenizer`, with its special token ids."""
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=128,
        forced_eos_token_id=None,
        init_std=0.5,
        **token_ids,
    )
    torch.manual_seed(0)
    return save(BartForConditionalGeneration(config), tokenizer, folder)


def tiny_bart(folder: Path) -> Path:
    tokenizer = minilm_tokenizer()
    return save_tiny_bart(
        folder,
        tokenizer,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.cls_token_id,
        forced_bos_token_id=None,
    )


def tiny_classifier(folder: Path, labels: list[str]) -> Path:
    tokenizer = minilm_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), **TINY, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}
    )
    torch.manual_seed(0)
    return save(BertForSequenceClassification(config), tokenizer, folder)


def build_tiny_models(root: Path) -> TinyModels:
    return TinyModels(
        bart=tiny_bart(root / "tiny-bart"),
        sentiment=tiny_classifier(root / "tiny-sentiment", ["NEG", "NEU", "POS"]),
        two_label_sentiment=tiny_classifier(root / "tiny-sst2", ["negative", "positive"]),
        nli=tiny_classifier(root / "tiny-nli", ["entailment", "neutral", "contradiction"]),
    )


def tiny_byte_level_bart(folder: Path, corpus: list[str]) -> Path:
    """A BART with a byte-level BPE tokenizer trained here on `corpus`: the tokenizer family
    of bart-large-cnn and distilbart, where a word's leading space is part of its token."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    bpe._tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", model_max_length=128
    )
    return save_tiny_bart(folder, tokenizer, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=0)
