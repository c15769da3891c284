"""Model selection on held-out SST-2 training sentences (``data.select_on = "train"``):
whole sentences held out, every phrase inside them dropped from training, seeded,
dev untouched; the ``sst2_phrases`` preset; the config key's errors."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from rnnkit import SentimentClassifier
from rnnkit.errors import UserError
from rnnkit.sentiment import SentimentDataConfig, load_config
from rnnkit.sentiment.config import RESUME_KEYS, check_config
from rnnkit.sentiment.data import eval_examples, prepare_examples, validation_name
from rnnkit.sentiment.readers import DATASETS, Example, read_examples
from rnnkit.sentiment.selection import phrase_tokens, phrases_inside
from testkit import one_line

# --------------------------------------------------------------------------- synthetic SST-2

_WORDS = ["a", "good", "film", "fun", "funny", "not", "bad", "very", "dull", ",", ".", "it"]


def _synthetic_sst2(seed: int = 0) -> dict[str, list[Example]]:
    """40 training sentences, their phrases (every span of up to 3 tokens, the sentence
    itself and a longer span, deduplicated, some with doubled spaces: GLUE-like) and 6 dev
    sentences."""
    rng = random.Random(seed)

    def sentence() -> list[str]:
        return [rng.choice(_WORDS) for _ in range(rng.randint(4, 10))]

    sentences = [" ".join(sentence()) for _ in range(40)]
    sentences = list(dict.fromkeys(sentences))
    dev = [" ".join(["dev", *sentence()]) for _ in range(6)]
    spans: list[str] = []
    for s in sentences:
        t = s.split()
        spans += [" ".join(t[a : a + n]) for n in (1, 2, 3) for a in range(len(t) - n + 1)]
        spans += [s, " ".join(t[1:-1])]
    spans = [p for p in dict.fromkeys(spans) if p]
    phrases = [p.replace(" ", "  ", 1) if i % 7 == 0 else p for i, p in enumerate(spans)]
    label = {s: rng.randint(0, 1) for s in sentences + dev + spans}
    return {
        "sst2:train": [Example(s, label[s], i + 1) for i, s in enumerate(sentences)],
        "sst2:dev": [Example(s, label[s], i + 1) for i, s in enumerate(dev)],
        "sst2-phrases:train": [
            Example(p, label[" ".join(p.split())], i + 2) for i, p in enumerate(phrases)
        ],
    }


@pytest.fixture
def fake_sst2(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Example]]:
    """Serve the synthetic SST-2 files wherever the sentiment code reads sst2 / sst2-phrases."""
    data = _synthetic_sst2()
    real = read_examples

    def fake(source, *, split=None, **kw):
        name, _, sub = str(source).partition(":")
        if name not in DATASETS or name == "imdb":
            return real(source, split=split, **kw)
        sub = sub or split or "train"
        key = "sst2:dev" if sub == "dev" else f"{name}:train"
        return iter(list(data[key]))

    for module in ("data", "selection"):
        monkeypatch.setattr(f"rnnkit.sentiment.{module}.read_examples", fake)
    return data


def _brute_force_inside(phrase: str, sentences: list[str]) -> bool:
    """Substring on the whitespace-normalised token string, one sentence at a time."""
    p = " ".join(phrase.split())
    return any(f" {p} " in f" {' '.join(s.split())} " for s in sentences)


# --------------------------------------------------------------------------- phrases inside


def test_phrases_inside_agrees_with_a_brute_force_substring_search():
    data = _synthetic_sst2(seed=4)
    phrases = [e.text for e in data["sst2-phrases:train"]]
    phrases += ["fun film", "a goo", "unny", "film  .", "dev a", "not  bad ,"]  # partial words
    sentences = [e.text for e in data["sst2:train"]]
    for chosen in (sentences[:1], sentences[:7], sentences[10:30:3], []):
        expected = [i for i, p in enumerate(phrases) if _brute_force_inside(p, chosen)]
        assert phrases_inside(phrases, chosen) == expected
    assert 0 < len(phrases_inside(phrases, sentences[:7])) < len(phrases)
    assert phrases_inside(["fun", "funny film"], ["a funny film ."]) == [1]  # tokens, not chars


@pytest.mark.parametrize(
    ("sentence", "phrase"),
    [
        ("for -lrb- sci-fi -rrb- rehash .", "( sci-fi ) rehash"),
        ("a comedy\\/drama that", "comedy/drama"),
        ("the running time about 10 ### minutes past", "time about 10 minutes"),
        ("you 're gonna like this movie .", "'re gon na like"),
        ("larry king , et al. , reno devolves", "king , et al ."),
        ("its ancillary products . . .", "products ..."),
        ("you live the mood rather than savour the story .", "savor the story ."),
        ("\\*\\*\\* stars", "*** stars"),
    ],
)
def test_the_sentence_files_spellings_match_the_phrase_files(sentence: str, phrase: str):
    assert phrases_inside([phrase, "no such phrase"], [sentence]) == [0]
    assert " ".join(phrase_tokens(phrase)) in " ".join(phrase_tokens(sentence))


# --------------------------------------------------------------------------- the split


def test_select_on_train_holds_out_whole_sentences_and_every_phrase_inside_them(fake_sst2):
    sentences, dev = fake_sst2["sst2:train"], fake_sst2["sst2:dev"]
    phrases = fake_sst2["sst2-phrases:train"]
    cfg = SentimentDataConfig(source="sst2-phrases", select_on="train", val_fraction=0.25)
    said: list[str] = []
    train, val = prepare_examples(cfg, seed=3, say=said.append)
    assert len(val) == round(0.25 * len(sentences)) and set(val) <= set(sentences)
    held = [e.text for e in val]
    expected = [p for p in phrases if not _brute_force_inside(p.text, held)]
    assert train == expected  # every phrase inside a held-out sentence dropped, no other
    assert not {" ".join(e.text.split()) for e in train} & set(held)  # the sentences too
    n_drop = len(phrases) - len(train)
    assert n_drop > len(val)
    assert len(said) == 1 and "\n" not in said[0]
    assert f"dropped the {n_drop:,} of {len(phrases):,} phrases" in said[0]
    # Deterministic per seed; another seed holds out other sentences.
    assert prepare_examples(cfg, seed=3) == (train, val)
    assert prepare_examples(cfg, seed=4)[1] != val
    # sst2 (sentences) with the same seed holds out the same sentences.
    s_train, s_val = prepare_examples(replace(cfg, source="sst2"), seed=3)
    assert s_val == val and sorted(s_train + s_val) == sorted(sentences)
    # Dev is untouched: not validated on, and still what evaluate() scores.
    assert not set(val) & set(dev)
    assert eval_examples(cfg) == ("sst2-phrases:dev", dev)  # = sst2:dev
    assert "held out of training, with every phrase inside them" in validation_name(cfg)
    # The default, select_on = "dev", is today's behaviour.
    assert prepare_examples(replace(cfg, select_on="dev"), seed=3) == (phrases, dev)
    assert validation_name(replace(cfg, select_on="dev")) == "sst2:dev"


def test_the_real_phrase_file_holds_every_training_sentence(data_mirror):
    """Each of the 6,920 sentences is a phrase of GLUE's file in phrase_tokens' form, so
    holding one out drops it (and its phrases) from training."""
    sentences = list(read_examples("sst2"))
    phrases = list(read_examples("sst2-phrases"))
    keys = {" ".join(phrase_tokens(e.text)) for e in phrases}
    assert all(" ".join(phrase_tokens(e.text)) in keys for e in sentences)
    cfg = SentimentDataConfig(source="sst2-phrases", select_on="train")
    train, val = prepare_examples(cfg, seed=1)
    assert len(val) == 692 and set(val) <= set(sentences)
    kept = {" ".join(phrase_tokens(e.text)) for e in train}
    assert not kept & {" ".join(phrase_tokens(e.text)) for e in val}
    assert 60_000 > len(train) > 55_000  # about 12% of the phrases lie inside 10% of sentences


# --------------------------------------------------------------------------- config


def test_select_on_is_checked_before_any_data_is_read():
    with pytest.raises(UserError, match=r"data.select_on must be dev or train, got 'both'") as e:
        SentimentClassifier(select_on="both", verbose=False).fit()
    one_line(e.value)
    with pytest.raises(UserError, match="data.select_on must be dev or train") as e:
        check_config(load_config(overrides=["data.select_on=Train"]))
    one_line(e.value)
    cfg = load_config(overrides={"data.select_on": "train", "data.val_source": "dev.tsv"})
    with pytest.raises(UserError, match="select_on=train .* data.val_source") as e:
        check_config(cfg)
    one_line(e.value)
    cfg = load_config(overrides={"data.source": "sst2-phrases", "data.select_on": "train"})
    with pytest.raises(UserError, match=r"data.val_fraction must be in \(0, 1\)"):
        check_config(replace(cfg, data=replace(cfg.data, val_fraction=0.0)))
    assert "data.select_on" in RESUME_KEYS  # a resumed run keeps its split


# --------------------------------------------------------------------------- the preset


def test_sst2_phrases_preset_fits_selecting_on_train_and_evaluates_on_dev(
    fake_sst2, tmp_path: Path, capsys
):
    cfg = load_config(preset="sst2_phrases")
    check_config(cfg)
    d = cfg.data
    assert (d.source, d.select_on, cfg.ensemble) == ("sst2-phrases", "train", 1)
    assert 0 < cfg.train.max_seconds <= 15 * 60 and cfg.model.pooling == "attention"
    small = {"train__max_steps": 3, "hidden_size": 8, "embed_dim": 8, "warmup_steps": 1}
    clf = SentimentClassifier(preset="sst2_phrases", progress="none", plot=False, **small)
    clf.fit(run_dir=tmp_path / "run")
    err = capsys.readouterr().err
    n = len(fake_sst2["sst2:train"])
    assert f"model selection on 4 of the {n} SST-2 training sentences" in err  # 0.1 of them
    measured = clf.metrics_["measured_on"]
    assert measured.startswith("a seeded 0.1 of the SST-2 training sentences (sst2:train)")
    assert measured.endswith("(4 texts)")
    report = clf.evaluate()  # without data: sst2:dev, the figure to report
    assert report["n"] == len(fake_sst2["sst2:dev"])
    folder = clf.save(tmp_path / "model")
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "- select_on: `train`" in card and "Measured on a seeded 0.1 of the SST-2" in card
    saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert saved["data"]["select_on"] == "train"


def test_sst2_sentences_are_read_in_the_phrase_files_spelling(data_mirror, shared_data):
    """A model trained on phrases meets dev's brackets and slashes as it met them in training."""
    raw = (shared_data / "sst2" / "dev.tsv").read_text(encoding="utf-8")
    assert "-lrb-" in raw and "\\/" in raw  # the file itself uses PTB escapes
    dev = " ".join(e.text for e in read_examples("sst2:dev"))
    phrases = " ".join(e.text for e in read_examples("sst2-phrases"))
    for escaped in ("-lrb-", "-rrb-", "\\/", " ### "):
        assert escaped not in f" {dev} " and escaped not in f" {phrases} "
    assert " ( " in f" {dev} " and " ( " in f" {phrases} "
