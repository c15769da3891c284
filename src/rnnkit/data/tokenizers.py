"""Tokenizers for text classification: a word vocabulary and a subword (byte-level BPE) model.

Longer than 400 lines: both tokenizers share one file and one id convention, and the
subword one carries its BPE-dropout sampler (read from the same fitted model).

Both are fitted on the training split only and saved with the model as JSON
(``tokenizer.json`` in a checkpoint; never pickled). Ids 0 and 1 are reserved::

    0  <pad>   padding (never produced by ``encode``)
    1  <unk>   a word the vocabulary has not kept (word level only)

- :class:`WordTokenizer`: words and punctuation by a regular expression
  (``don't`` stays one word, ``'s`` and ``n't`` too), optional lower-casing,
  a vocabulary of the words seen at least ``min_freq`` times, the ``max_size``
  most frequent kept (ties broken alphabetically, so fitting is deterministic).
  With ``oov_pieces=N`` a word outside the vocabulary is not ``<unk>`` but
  split into word pieces (``blundering`` -> ``blunder ##ing``) by a WordPiece
  model of N pieces fitted on the training words: rare training words train
  the pieces, and unseen words at test time keep their stem and affixes.
- :class:`SubwordTokenizer`: Hugging Face ``tokenizers`` byte-level BPE
  (Sennrich et al. 2016; GPT-2's byte-level variant), so every text encodes
  without ``<unk>`` and ``decode(encode(text))`` gives the (normalised) text back.
  ``encode_sampled(texts, dropout=p, seed=s)`` segments with BPE-dropout
  (Provilkov et al. 2020) for training: a seeded, random segmentation of the
  same text from the same merges.

``encode_with_spans(text)`` also returns each token's character span in the
original text: explanations highlight the original text with it.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rnnkit.errors import UserError

__all__ = [
    "PAD",
    "PAD_ID",
    "UNK",
    "UNK_ID",
    "SubwordTokenizer",
    "WordTokenizer",
    "bpe_dropout_word",
    "build_tokenizer",
    "tokenizer_from_dict",
]

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

# A word (letters/digits/underscore, with inner or leading apostrophes: don't, 's, n't)
# or one punctuation character.
_WORD_RE = re.compile(r"'?\w+(?:['’]\w+)*|[^\w\s]")


def _hf_tokenizer(text: Any) -> Any:
    """A Hugging Face ``tokenizers.Tokenizer`` from its JSON, or a UserError if damaged."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_str(text)
    except Exception as exc:  # the library raises a bare Exception on bad JSON
        raise UserError(f"tokenizer.json is malformed ({exc}); the checkpoint is damaged") from exc


class WordTokenizer:
    """Word-level vocabulary: ``fit(texts)`` -> ``encode(text)`` ids, unknown words -> ``<unk>``.

    Args:
        lowercase: lower-case before splitting.
        min_freq: keep words seen at least this often in the training texts.
        max_size: keep at most this many words (most frequent first); 0 = no limit.
        oov_pieces: 0 maps every other word to ``<unk>``; N > 0 splits it into
            pieces of a WordPiece model (Hugging Face ``tokenizers``; Schuster &
            Nakajima 2012, as in BERT) of about N pieces, trained on the distinct
            training words. A word-initial piece that is also a vocabulary word
            shares its id; the other pieces get ids after the words.

    Attributes (after ``fit``):
        itos_: the tokens, index = id (``itos_[0] == "<pad>"``, ``itos_[1] == "<unk>"``);
            continuation pieces start with ``##``.
        stoi_: token -> id.
    """

    kind = "word"

    def __init__(
        self, *, lowercase: bool = True, min_freq: int = 1, max_size: int = 0, oov_pieces: int = 0
    ) -> None:
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_size = max_size
        self.oov_pieces = oov_pieces
        self.itos_: list[str] = []
        self.stoi_: dict[str, int] = {}
        self.pieces_: Any = None  # the fitted WordPiece model (tokenizers.Tokenizer) or None
        self._split_cache: dict[str, list[int]] = {}

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
        if self.oov_pieces < 0:
            raise UserError(f"data.oov_pieces must be >= 0 (0 = off), got {self.oov_pieces}")
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
        self.pieces_, self._split_cache = None, {}
        if self.oov_pieces:
            self._fit_pieces(sorted(counts))
        return self

    def _fit_pieces(self, words: list[str]) -> None:
        """Train the WordPiece model on the distinct training words; add its pieces."""
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        wp = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=64))
        wp.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # one word per line, kept whole
        trainer = trainers.WordPieceTrainer(
            vocab_size=self.oov_pieces, special_tokens=[UNK], show_progress=False
        )
        # Each distinct word once: pieces model the make-up of word types (stems and
        # affixes), not the frequency of a few common words.
        wp.train_from_iterator(words, trainer=trainer)
        # The trained alphabet is positional: a letter seen only at the start of
        # words has no "##" form, and a word needing it would become <unk> whole.
        vocab = wp.get_vocab()
        singles = {p.removeprefix("##") for p in vocab if len(p.removeprefix("##")) == 1}
        for c in sorted(singles):
            for form in (c, "##" + c):
                vocab.setdefault(form, len(vocab))
        wp.model = models.WordPiece(vocab, unk_token=UNK, max_input_chars_per_word=64)
        self._set_pieces(wp)

    def _set_pieces(self, wp: Any) -> None:
        self.pieces_ = wp
        for piece, _ in sorted(wp.get_vocab().items(), key=lambda kv: kv[1]):
            if piece != UNK and piece not in self.stoi_:
                self.stoi_[piece] = len(self.itos_)
                self.itos_.append(piece)

    def _ids(self, token: str) -> list[int]:
        """The id of a vocabulary word, else its pieces' ids (or ``[<unk>]``)."""
        i = self.stoi_.get(token)
        if i is not None:
            return [i]
        if self.pieces_ is None:
            return [UNK_ID]
        ids = self._split_cache.get(token)
        if ids is None:
            pieces = self.pieces_.encode(token).tokens or [UNK]
            ids = [self.stoi_.get(p, UNK_ID) for p in pieces]
            if len(self._split_cache) < 100_000:
                self._split_cache[token] = ids
        return ids

    def __len__(self) -> int:
        return len(self.itos_)

    def _check_fitted(self) -> None:
        if not self.itos_:
            raise RuntimeError("WordTokenizer is not fitted; call fit(texts) first")

    def encode(self, text: str) -> list[int]:
        self._check_fitted()
        if self.pieces_ is None:
            get = self.stoi_.get
            return [get(t, UNK_ID) for t in self.tokenize(text)]
        return [i for t in self.tokenize(text) for i in self._ids(t)]

    def encode_with_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and each token's (start, end) character span in ``text``.

        Lower-casing keeps string length for almost all text; where it does not
        (e.g. 'İ'), spans are computed on the lower-cased string. The pieces of a
        split word each get the whole word's span.
        """
        self._check_fitted()
        ids, spans = [], []
        for m in self._matches(text):
            piece_ids = self._ids(m.group())
            ids += piece_ids
            spans += [m.span()] * len(piece_ids)
        return ids, spans

    def decode(self, ids: Iterable[int]) -> str:
        """Tokens joined by single spaces, pieces joined back into their word
        (the inverse of ``encode`` up to spacing)."""
        self._check_fitted()
        return " ".join(self.itos_[i] for i in ids if i != PAD_ID).replace(" ##", "")

    def to_dict(self) -> dict[str, Any]:
        d = {
            "kind": self.kind,
            "lowercase": self.lowercase,
            "min_freq": self.min_freq,
            "max_size": self.max_size,
            "itos": self.itos_,
        }
        if self.pieces_ is not None:
            d["oov_pieces"] = self.oov_pieces
            d["pieces"] = self.pieces_.to_str()  # the library's own JSON format
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordTokenizer:
        itos = d.get("itos")
        if not isinstance(itos, list) or itos[:2] != [PAD, UNK]:
            raise UserError("tokenizer.json is malformed (bad 'itos'); the checkpoint is damaged")
        tok = cls(
            lowercase=bool(d["lowercase"]),
            min_freq=d["min_freq"],
            max_size=d["max_size"],
            oov_pieces=int(d.get("oov_pieces", 0)),
        )
        tok.itos_ = list(itos)
        tok.stoi_ = {w: i for i, w in enumerate(itos)}
        if "pieces" in d:
            tok.pieces_ = _hf_tokenizer(d["pieces"])
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
        self._tables: _BPETables | None = None  # encode_sampled's merge tables, built once

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

    def encode_sampled(self, texts: Sequence[str], *, dropout: float, seed: int) -> list[list[int]]:
        """BPE-dropout ids of ``texts`` (Provilkov et al. 2020), for training only.

        Each word is segmented by the fitted merges as in :meth:`encode`, except
        that at every merge step each applicable merge is removed with probability
        ``dropout`` and the best one left is applied; when none is left the word's
        segmentation ends (:func:`bpe_dropout_word`). The pieces are still
        vocabulary symbols, and decoding gives the text back. ``dropout = 0`` gives
        :meth:`encode`'s ids (a test checks it against Hugging Face's Rust
        implementation). Seeded by ``seed`` (a ``random.Random`` stream over
        ``texts`` in order), so an epoch's segmentation can be drawn again exactly;
        the Rust model's own ``dropout`` option draws from an unseeded thread-local
        generator instead.
        """
        self._check_fitted()
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"BPE dropout must be in [0, 1), got {dropout}")
        tables = self._bpe_tables()
        rng = random.Random(seed)
        return [tables.encode(text, dropout, rng) for text in texts]

    def _bpe_tables(self) -> _BPETables:
        cached = self._tables
        if cached is None or cached.tokenizer is not self.tokenizer_:
            cached = self._tables = _BPETables(self.tokenizer_)
        return cached

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
        tok = cls(vocab_size=d["vocab_size"], lowercase=d["lowercase"], min_freq=d["min_freq"])
        tok.tokenizer_ = _hf_tokenizer(d["tokenizer"])
        return tok


class _BPETables:
    """What BPE-dropout needs of a fitted Hugging Face BPE tokenizer, read from its JSON
    (merge ranks, the vocabulary, the special tokens; its normaliser and pre-tokeniser),
    and each word's plain BPE path, cached."""

    MAX_CACHED_WORDS = 500_000

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        spec = json.loads(tokenizer.to_str())
        model = spec["model"]
        if model.get("type") != "BPE":
            raise UserError(f"BPE dropout needs a BPE tokenizer, got {model.get('type')!r}")
        self.vocab: dict[str, int] = model["vocab"]
        self.unk_id = self.vocab.get(model.get("unk_token") or UNK, UNK_ID)
        self.ignore_merges = bool(model.get("ignore_merges"))
        self.ranks: dict[tuple[str, str], int] = {}
        for rank, merge in enumerate(model["merges"]):
            # tokenizers >= 0.20 writes [a, b]; earlier versions wrote "a b".
            a, b = merge if isinstance(merge, list) else merge.split(" ")
            self.ranks[(a, b)] = rank
        # Added tokens are matched in the raw text first, as Hugging Face does.
        self.added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        self.split = (
            re.compile("(" + "|".join(map(re.escape, sorted(self.added, key=len)[::-1])) + ")")
            if self.added
            else None
        )
        self.normalizer = tokenizer.normalizer
        self.pre_tokenizer = tokenizer.pre_tokenizer
        self.paths: dict[str, tuple[list[int], list[str]]] = {}

    def encode(self, text: str, dropout: float, rng: random.Random) -> list[int]:
        ids: list[int] = []
        parts = self.split.split(text) if self.split is not None else [text]
        for part in parts:
            if part in self.added:
                ids.append(self.added[part])
                continue
            if not part:
                continue
            if self.normalizer is not None:
                part = self.normalizer.normalize_str(part)
            words = self.pre_tokenizer.pre_tokenize_str(part) if self.pre_tokenizer else [(part,)]
            for word, *_ in words:
                if self.ignore_merges and word in self.vocab:
                    ids.append(self.vocab[word])
                    continue
                ids += [self.vocab.get(p, self.unk_id) for p in self._pieces(word, dropout, rng)]
        return ids

    def _pieces(self, word: str, dropout: float, rng: random.Random) -> list[str]:
        """:func:`bpe_dropout_word` with the same draws and result, faster: until the
        first skip, BPE-dropout follows plain BPE's path (one draw per step), which is
        cached per word; only from a skip on are the merges searched again."""
        path = self.paths.get(word)
        if path is None:
            symbols, steps = list(word), []
            _merge(symbols, self.ranks, 0.0, None, steps=steps)
            path = (steps, symbols)
            if len(self.paths) < self.MAX_CACHED_WORDS:
                self.paths[word] = path
        steps, pieces = path
        if dropout:
            for j in range(len(steps)):
                if rng.random() < dropout:  # plain BPE's merge j is skipped here
                    symbols = list(word)
                    for i in steps[:j]:
                        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
                    return _merge(symbols, self.ranks, dropout, rng, first_skipped=True)
        return list(pieces)


def bpe_dropout_word(
    word: str, ranks: Mapping[tuple[str, str], int], dropout: float, rng: random.Random
) -> list[str]:
    """The pieces of ``word`` (its symbols: characters) by BPE with dropout.

    Provilkov et al. 2020, Algorithm 1: at each step every applicable merge
    (adjacent pair with a rank) is removed with probability ``dropout`` and the
    best one left (lowest rank, then leftmost) is applied; when none is left the
    segmentation stops. Drawn lazily, in priority order, until the first merge
    kept (the same distribution with fewer draws). ``dropout = 0`` is plain BPE,
    without draws.
    """
    return _merge(list(word), ranks, dropout, rng)


def _merge(
    symbols: list[str],
    ranks: Mapping[tuple[str, str], int],
    dropout: float,
    rng: random.Random | None,  # None only with dropout 0 (no draws)
    *,
    first_skipped: bool = False,
    steps: list[int] | None = None,
) -> list[str]:
    """Merge ``symbols`` in place (see :func:`bpe_dropout_word`) and return them.

    ``first_skipped``: the first step's best merge was already skipped (its draw
    made). ``steps``: collects the position of each merge applied.
    """
    while len(symbols) > 1:
        candidates = sorted(
            (rank, i)
            for i, pair in enumerate(zip(symbols, symbols[1:], strict=False))
            if (rank := ranks.get(pair)) is not None
        )
        if first_skipped:
            candidates, first_skipped = candidates[1:], False
        # The first merge not skipped (draws stop there); None: nothing applicable or all
        # skipped, and the segmentation ends.
        i = next((i for _, i in candidates if not dropout or rng.random() >= dropout), None)
        if i is None:
            break
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        if steps is not None:
            steps.append(i)
    return symbols


Tokenizer = WordTokenizer | SubwordTokenizer


def build_tokenizer(
    kind: str,
    *,
    lowercase: bool = True,
    min_freq: int = 1,
    max_size: int = 0,
    subword_vocab_size: int = 8000,
    oov_pieces: int = 0,
) -> Tokenizer:
    """An unfitted tokenizer: ``kind`` is ``"word"`` or ``"subword"``."""
    if kind == "word":
        return WordTokenizer(
            lowercase=lowercase, min_freq=min_freq, max_size=max_size, oov_pieces=oov_pieces
        )
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
