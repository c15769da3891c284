"""Tokenizers for text classification: a word vocabulary and a subword (byte-level BPE) model.

Both are fitted on the training split only and saved with the model as JSON
(``tokenizer.json`` in a checkpoint; never pickled). Ids 0 and 1 are reserved::

    0  <pad>   padding (never produced by ``encode``)
    1  <unk>   a word the vocabulary has not kept (word level only)

- :class:`WordTokenizer`: words and punctuation by a regular expression
  (``don't`` stays one word, ``'s`` and ``n't`` too), optional lower-casing,
  a vocabulary of the words seen at least ``min_freq`` times, the ``max_size``
  most frequent kept (ties broken alphabetically, so fitting is deterministic).
- :class:`SubwordTokenizer`: Hugging Face ``tokenizers`` byte-level BPE
  (Sennrich et al. 2016; GPT-2's byte-level variant), so every text encodes
  without ``<unk>`` and ``decode(encode(text))`` gives the (normalised) text back.

``encode_with_spans(text)`` also returns each token's character span in the
original text: explanations highlight the original text with it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from rnnkit.errors import UserError

__all__ = [
    "PAD",
    "PAD_ID",
    "UNK",
    "UNK_ID",
    "SubwordTokenizer",
    "WordTokenizer",
    "build_tokenizer",
    "tokenizer_from_dict",
]

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

# A word (letters/digits/underscore, with inner or leading apostrophes: don't, 's, n't)
# or one punctuation character.
_WORD_RE = re.compile(r"'?\w+(?:['’]\w+)*|[^\w\s]")


class WordTokenizer:
    """Word-level vocabulary: ``fit(texts)`` -> ``encode(text)`` ids, unknown words -> ``<unk>``.

    Args:
        lowercase: lower-case before splitting.
        min_freq: keep words seen at least this often in the training texts.
        max_size: keep at most this many words (most frequent first); 0 = no limit.

    Attributes (after ``fit``):
        itos_: the tokens, index = id (``itos_[0] == "<pad>"``, ``itos_[1] == "<unk>"``).
        stoi_: token -> id.
    """

    kind = "word"

    def __init__(self, *, lowercase: bool = True, min_freq: int = 1, max_size: int = 0) -> None:
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_size = max_size
        self.itos_: list[str] = []
        self.stoi_: dict[str, int] = {}

    def tokenize(self, text: str) -> list[str]:
        return [m.group() for m in self._matches(text)]

    def _matches(self, text: str) -> Iterable[re.Match[str]]:
        return _WORD_RE.finditer(text.lower() if self.lowercase else text)

    def fit(self, texts: Iterable[str]) -> WordTokenizer:
        """Count the words of ``texts`` (streamed: any iterable) and keep the vocabulary."""
        if self.min_freq < 1:
            raise UserError(f"data.min_freq must be >= 1, got {self.min_freq}")
        if self.max_size < 0:
            raise UserError(f"data.max_vocab must be >= 0 (0 = no limit), got {self.max_size}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(self.tokenize(text))
        return self.fit_counts(counts)

    def fit_counts(self, counts: Counter[str]) -> WordTokenizer:
        """Keep the vocabulary from word counts already made (streaming readers)."""
        words = [w for w, n in counts.items() if n >= self.min_freq and w not in (PAD, UNK)]
        words.sort(key=lambda w: (-counts[w], w))  # most frequent first, ties alphabetical
        if self.max_size:
            words = words[: self.max_size]
        if not words:
            raise UserError(
                f"no word occurs at least min_freq={self.min_freq} times in the training texts; "
                "lower data.min_freq or use more data"
            )
        self.itos_ = [PAD, UNK, *words]
        self.stoi_ = {w: i for i, w in enumerate(self.itos_)}
        return self

    def __len__(self) -> int:
        return len(self.itos_)

    def _check_fitted(self) -> None:
        if not self.itos_:
            raise RuntimeError("WordTokenizer is not fitted; call fit(texts) first")

    def encode(self, text: str) -> list[int]:
        self._check_fitted()
        get = self.stoi_.get
        return [get(t, UNK_ID) for t in self.tokenize(text)]

    def encode_with_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and each token's (start, end) character span in ``text``.

        Lower-casing keeps string length for almost all text; where it does not
        (e.g. 'İ'), spans are computed on the lower-cased string.
        """
        self._check_fitted()
        ms = list(self._matches(text))
        return [self.stoi_.get(m.group(), UNK_ID) for m in ms], [m.span() for m in ms]

    def decode(self, ids: Iterable[int]) -> str:
        """Tokens joined by single spaces (the inverse of ``encode`` up to spacing)."""
        self._check_fitted()
        return " ".join(self.itos_[i] for i in ids if i != PAD_ID)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lowercase": self.lowercase,
            "min_freq": self.min_freq,
            "max_size": self.max_size,
            "itos": self.itos_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordTokenizer:
        itos = d.get("itos")
        if not isinstance(itos, list) or itos[:2] != [PAD, UNK]:
            raise UserError("tokenizer.json is malformed (bad 'itos'); the checkpoint is damaged")
        tok = cls(lowercase=bool(d["lowercase"]), min_freq=d["min_freq"], max_size=d["max_size"])
        tok.itos_ = list(itos)
        tok.stoi_ = {w: i for i, w in enumerate(itos)}
        return tok


class SubwordTokenizer:
    """Byte-level BPE from Hugging Face ``tokenizers``, trained on the training texts.

    Args:
        vocab_size: target vocabulary size (including the 256 byte symbols and specials).
        lowercase: lower-case first (a normaliser inside the saved tokenizer).
        min_freq: minimum pair frequency for a merge.
    """

    kind = "subword"

    def __init__(
        self, *, vocab_size: int = 8000, lowercase: bool = True, min_freq: int = 2
    ) -> None:
        self.vocab_size = vocab_size
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.tokenizer_: Any = None

    def fit(self, texts: Iterable[str]) -> SubwordTokenizer:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        if self.vocab_size < 260:
            raise UserError(
                f"data.subword_vocab_size must be >= 260 (256 bytes + specials), got "
                f"{self.vocab_size}"
            )
        tok = Tokenizer(models.BPE(unk_token=UNK))
        if self.lowercase:
            tok.normalizer = normalizers.Lowercase()
        # No prefix space: decode(encode(text)) must give the text back exactly.
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_freq,
            special_tokens=[PAD, UNK],  # ids 0 and 1, as for words
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        self.tokenizer_ = tok
        return self

    def __len__(self) -> int:
        self._check_fitted()
        return self.tokenizer_.get_vocab_size()

    def _check_fitted(self) -> None:
        if self.tokenizer_ is None:
            raise RuntimeError("SubwordTokenizer is not fitted; call fit(texts) first")

    def tokenize(self, text: str) -> list[str]:
        self._check_fitted()
        return self.tokenizer_.encode(text).tokens

    def encode(self, text: str) -> list[int]:
        self._check_fitted()
        return self.tokenizer_.encode(text).ids

    def encode_with_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        self._check_fitted()
        enc = self.tokenizer_.encode(text)
        spans = []
        for a, b in enc.offsets:
            # Byte-level pieces carry the space before a word ("Ġfunny"); highlight the word.
            while a < b and text[a].isspace():
                a += 1
            spans.append((a, b))
        return list(enc.ids), spans

    def decode(self, ids: Iterable[int]) -> str:
        self._check_fitted()
        return self.tokenizer_.decode(list(ids))

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "lowercase": self.lowercase,
            "min_freq": self.min_freq,
            "tokenizer": self.tokenizer_.to_str(),  # the library's own JSON format
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SubwordTokenizer:
        from tokenizers import Tokenizer

        tok = cls(vocab_size=d["vocab_size"], lowercase=d["lowercase"], min_freq=d["min_freq"])
        try:
            tok.tokenizer_ = Tokenizer.from_str(d["tokenizer"])
        except Exception as exc:  # the library raises a bare Exception on bad JSON
            raise UserError(
                f"tokenizer.json is malformed ({exc}); the checkpoint is damaged"
            ) from exc
        return tok


Tokenizer = WordTokenizer | SubwordTokenizer


def build_tokenizer(
    kind: str,
    *,
    lowercase: bool = True,
    min_freq: int = 1,
    max_size: int = 0,
    subword_vocab_size: int = 8000,
) -> Tokenizer:
    """An unfitted tokenizer: ``kind`` is ``"word"`` or ``"subword"``."""
    if kind == "word":
        return WordTokenizer(lowercase=lowercase, min_freq=min_freq, max_size=max_size)
    if kind == "subword":
        return SubwordTokenizer(
            vocab_size=subword_vocab_size, lowercase=lowercase, min_freq=max(2, min_freq)
        )
    raise UserError(f"data.tokenizer must be word or subword, got {kind!r}")


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """Inverse of ``to_dict`` for either kind."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == "word":
        return WordTokenizer.from_dict(d)
    if kind == "subword":
        return SubwordTokenizer.from_dict(d)
    raise UserError(f"tokenizer.json has unknown kind {kind!r}; the checkpoint is damaged")
