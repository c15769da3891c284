"""Word and subword tokenizers (shared by sentiment and translate)."""

from __future__ import annotations

import json

import pytest

from rnnkit.data.tokenizers import (
    PAD_ID,
    UNK_ID,
    SubwordTokenizer,
    WordTokenizer,
    build_tokenizer,
    tokenizer_from_dict,
)
from rnnkit.errors import UserError


def test_word_tokenizer_vocabulary_and_round_trip():
    texts = ["The film is great, isn't it?", "the FILM is dull.", "great great fun"]
    tok = WordTokenizer(lowercase=True, min_freq=2).fit(texts)
    # the, film, is (2x), great (3x): most frequent first, ties alphabetical.
    assert tok.itos_ == ["<pad>", "<unk>", "great", "film", "is", "the"]
    assert tok.tokenize("Isn't it GREAT?!") == ["isn't", "it", "great", "?", "!"]
    ids = tok.encode("The great unknown film")
    assert ids == [5, 2, UNK_ID, 3]
    # Round trip: in-vocabulary words come back; the rest become <unk>.
    assert tok.decode(tok.encode("the film is great")) == "the film is great"
    assert tok.decode(ids) == "the great <unk> film"
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.itos_ == tok.itos_ and again.encode("the great unknown film") == ids
    assert WordTokenizer(max_size=1).fit(texts).itos_ == ["<pad>", "<unk>", "great"]
    cased = WordTokenizer(lowercase=False).fit(texts)
    assert "FILM" in cased.stoi_ and "The" in cased.stoi_
    text = "Great film, isn't it"
    ids, spans = tok.encode_with_spans(text)
    assert [text[a:b].lower() for a, b in spans] == tok.tokenize(text)
    with pytest.raises(UserError, match="min_freq=9"):
        WordTokenizer(min_freq=9).fit(texts)


def test_word_tokenizer_splits_unknown_words_into_pieces():
    texts = ["a gripping film", "a charming film", "funny and charming", "boring and dull"] * 3
    texts += ["grip", "charm", "bore", "fun"]  # seen once: below min_freq, so split too
    tok = build_tokenizer("word", min_freq=2, oov_pieces=60).fit(texts)
    plain = WordTokenizer(min_freq=2).fit(texts)
    assert tok.itos_[: len(plain)] == plain.itos_  # the words keep their ids
    pieces = tok.itos_[len(plain) :]
    assert pieces and all(p not in plain.stoi_ for p in pieces)
    # An unseen word is its pieces, not <unk>; known words are untouched.
    ids = tok.encode("a gripping refilming film")
    assert UNK_ID not in ids and len(ids) > 4
    assert ids[:2] == plain.encode("a gripping") and ids[-1] == plain.stoi_["film"]
    split = [tok.itos_[i] for i in ids[2:-1]]
    assert split[0][:2] != "##" and all(p.startswith("##") for p in split[1:])
    assert tok.decode(ids) == "a gripping refilming film"  # pieces joined back
    # Each piece carries its whole word's span (explanations highlight words).
    text = "Refilming film"
    ids2, spans = tok.encode_with_spans(text)
    assert ids2 == tok.encode(text) and spans[: len(split)] == [(0, 9)] * len(split)
    # Saved with the model (the WordPiece model inside tokenizer.json) and loaded back.
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.itos_ == tok.itos_ and again.encode("a gripping refilming film") == ids
    assert "pieces" not in plain.to_dict()  # off by default: the old format
    with pytest.raises(UserError, match="oov_pieces must be >= 0"):
        WordTokenizer(oov_pieces=-1).fit(texts)


def test_subword_tokenizer_round_trip_and_save():
    texts = ["a gripping, funny film", "a dull and boring film", "funny and warm"] * 20
    tok = build_tokenizer("subword", subword_vocab_size=300)
    assert isinstance(tok, SubwordTokenizer)
    tok.fit(texts)
    text = "A Funny, unseen zebra-film!"
    ids = tok.encode(text)
    assert PAD_ID not in ids and UNK_ID not in ids  # byte level: no unknown pieces
    assert tok.decode(ids) == text.lower()  # exact round trip of the normalised text
    _, spans = tok.encode_with_spans(text)
    assert "".join(text[a:b] for a, b in spans) == text.replace(" ", "")
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode(text) == ids and len(again) == len(tok)
    with pytest.raises(UserError, match="subword_vocab_size must be >= 260"):
        build_tokenizer("subword", subword_vocab_size=100).fit(texts)
    with pytest.raises(UserError, match="word or subword"):
        build_tokenizer("char")
