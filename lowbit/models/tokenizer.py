"""BERT's uncased WordPiece tokenizer, written against a vocab.txt (one token per line, its line
number its id): clean the text, split off CJK characters, lowercase and strip accents, split on
whitespace and punctuation, then split each word greedily into the longest vocabulary pieces
('##' marks a piece inside a word); a word with no split, or longer than 100 characters, is [UNK]."""

from __future__ import annotations

import unicodedata
from pathlib import Path

MAX_WORD = 100


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                                             (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF),
                                             (0x2F800, 0x2FA1F)))  # fmt: skip


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def basic_tokens(text: str) -> list[str]:
    words = []
    for word in _clean(text).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


class WordPiece:
    """Token ids of sentences, with [CLS] ... [SEP] and at most `max_length` tokens."""

    def __init__(self, vocab_path: str | Path, max_length: int = 256):
        tokens = Path(vocab_path).read_text(encoding="utf-8").splitlines()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.max_length = max_length
        self.unk, self.cls, self.sep = self.vocab["[UNK]"], self.vocab["[CLS]"], self.vocab["[SEP]"]

    def pieces(self, word: str) -> list[int]:
        if len(word) > MAX_WORD:
            return [self.unk]
        out = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            out.append(found)
            start = end
        return out

    def encode(self, text: str) -> list[int]:
        ids = [i for w in basic_tokens(text) for i in self.pieces(w)]
        return [self.cls, *ids[: self.max_length - 2], self.sep]
