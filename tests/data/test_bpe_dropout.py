"""BPE-dropout of the subword tokenizer (Provilkov et al. 2020; translate's data.bpe_dropout).

Oracles: Hugging Face's Rust encoder (dropout 0 is plain BPE) and the reference
procedure :func:`bpe_dropout_word` run word by word (the cached fast path must
make the same draws and give the same pieces).
"""

from __future__ import annotations

import json
import random

import pytest

from rnnkit.data.tokenizers import UNK_ID, SubwordTokenizer, bpe_dropout_word
from rnnkit.errors import UserError

SENTENCES = [
    "Ein Mann fährt Fahrrad . Zwei Hunde spielen im Schnee , während Kinder zuschauen .",
    "A man is riding a bicycle . Two dogs are playing in the snow while children watch .",
    "Eine Frau in einem roten Kleid geht die Straße entlang . The women's bikes aren't new !",
]
WORDS = [w for s in SENTENCES for w in s.split()]


def _corpus(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


ODD = [
    "  leading and  double  spaces\tand a tab",
    "UPPER lower MiXeD émigré naïve İstanbul ß",
    "a <unk> b",
    "x<pad>y<unk>",
    "<UNK> is not the special token",
    "unseen wörds: Quokka 42 ☃ 🙂",
    ".",
]


@pytest.fixture(scope="module", params=[False, True], ids=["cased", "lowercase"])
def tok(request: pytest.FixtureRequest) -> SubwordTokenizer:
    return SubwordTokenizer(vocab_size=420, lowercase=request.param).fit(_corpus(400, 0))


def test_dropout_zero_is_plain_bpe(tok: SubwordTokenizer) -> None:
    texts = _corpus(200, 1) + ODD
    assert tok.encode_sampled(texts, dropout=0.0, seed=3) == [tok.encode(t) for t in texts]


def test_the_cached_path_makes_the_reference_draws(tok: SubwordTokenizer) -> None:
    spec = json.loads(tok.tokenizer_.to_str())["model"]
    ranks = {tuple(m): r for r, m in enumerate(spec["merges"])}
    vocab = spec["vocab"]
    texts = _corpus(150, 2)
    normalize = tok.tokenizer_.normalizer.normalize_str if tok.lowercase else str
    for p in (0.1, 0.5):
        rng = random.Random(7)
        reference = [
            [
                vocab[piece]
                for word, _ in tok.tokenizer_.pre_tokenizer.pre_tokenize_str(normalize(t))
                for piece in bpe_dropout_word(word, ranks, p, rng)
            ]
            for t in texts
        ]
        assert tok.encode_sampled(texts, dropout=p, seed=7) == reference


def test_samples_are_seeded_and_decode_to_the_same_text(tok: SubwordTokenizer) -> None:
    texts = _corpus(100, 4) + ODD
    plain = [tok.encode(t) for t in texts]
    a = tok.encode_sampled(texts, dropout=0.3, seed=1)
    assert a == tok.encode_sampled(texts, dropout=0.3, seed=1)
    assert a != tok.encode_sampled(texts, dropout=0.3, seed=2)
    assert a != plain
    assert [tok.decode(x) for x in a] == [tok.decode(x) for x in plain]
    assert sum(map(len, a)) > sum(map(len, plain))  # dropped merges: more, shorter pieces
    assert all(0 <= i < len(tok) for x in a for i in x)
    # <unk> only where the text itself names it (a literal special token)
    assert all(UNK_ID not in x for x, t in zip(a, texts, strict=True) if "<unk>" not in t)


def test_old_merges_format_a_reloaded_tokenizer_and_bad_dropout() -> None:
    tok = SubwordTokenizer(vocab_size=400, lowercase=False).fit(_corpus(300, 5))
    texts = _corpus(50, 6)
    want = tok.encode_sampled(texts, dropout=0.2, seed=9)
    again = SubwordTokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode_sampled(texts, dropout=0.2, seed=9) == want

    class Before020:
        """A tokenizers < 0.20 Tokenizer: its JSON writes merges as "a b"."""

        def __init__(self, real: object) -> None:
            spec = json.loads(real.to_str())  # type: ignore[attr-defined]
            spec["model"]["merges"] = [" ".join(m) for m in spec["model"]["merges"]]
            self.text = json.dumps(spec)
            self.normalizer = real.normalizer  # type: ignore[attr-defined]
            self.pre_tokenizer = real.pre_tokenizer  # type: ignore[attr-defined]

        def to_str(self) -> str:
            return self.text

    again.tokenizer_ = Before020(again.tokenizer_)
    assert again.encode_sampled(texts, dropout=0.2, seed=9) == want
    for bad in (1.0, -0.1):
        with pytest.raises(UserError, match=r"BPE dropout must be in \[0, 1\)"):
            tok.encode_sampled(texts, dropout=bad, seed=0)
