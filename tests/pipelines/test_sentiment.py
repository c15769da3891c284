"""Text classification: model oracles, padding invariance, fit, save/load, explain, CLI."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.cli import main as cli_main
from rnnkit.data.textcls import ClsBatch
from rnnkit.errors import UserError
from rnnkit.models.text_classifier import (
    POOLINGS,
    TextClassifier,
    TextClassifierConfig,
    load_word_vectors,
)
from rnnkit.pipelines import sentiment
from rnnkit.pipelines.sentiment import SentimentClassifier, classification_report, make_loss
from rnnkit.training import read_metrics

POS = [
    "a gripping , funny film",
    "great acting and a lovely story",
    "wonderful , warm and moving",
    "i loved every minute",
    "funny , smart and great fun",
    "a lovely , gripping story",
]
NEG = [
    "a dull , boring mess",
    "terrible acting and a weak story",
    "awful , cold and tedious",
    "i hated every minute",
    "boring , dumb and no fun",
    "a weak , dull story",
]


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: thread hand-offs cost more than they bring on a shared 2-core box.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_config(**over) -> sentiment.SentimentConfig:
    base = {
        "model.embed_dim": 16,
        "model.hidden_size": 16,
        "model.dropout": 0.0,
        "model.embed_dropout": 0.0,
        "epochs": 40,
        "data.batch_size": 4,
        "train.lr": 1e-2,
        "train.warmup_steps": 5,
        "train.progress": "none",
        "train.plot": False,
        "train.early_stopping_patience": 0,
    }
    base.update(over)
    return sentiment.load_config(overrides=base)


@pytest.fixture(scope="module")
def fitted() -> SentimentClassifier:
    torch.set_num_threads(1)
    texts, labels = POS + NEG, ["pos"] * 6 + ["neg"] * 6
    return SentimentClassifier(tiny_config()).fit(texts, labels, val_texts=texts, val_labels=labels)


# --------------------------------------------------------------------------- model


def _oracle_logits(model: TextClassifier, ids: torch.Tensor) -> torch.Tensor:
    """The same network from torch.nn parts, one unpadded sequence: ids (T,) -> (C,)."""
    cfg = model.config
    lstm = torch.nn.LSTM(cfg.embed_dim, cfg.hidden_size, batch_first=True, bidirectional=True)
    lstm.load_state_dict(model.rnn.state_dict())  # same parameter names as torch.nn
    h, (h_n, _) = lstm(model.embed.weight[ids][None])  # (1, T, 2H)
    h = h[0]
    if cfg.pooling == "last":
        pooled = torch.cat([h_n[0, 0], h_n[1, 0]])
    elif cfg.pooling == "mean":
        pooled = h.mean(0)
    elif cfg.pooling == "max":
        pooled = h.max(0).values
    elif cfg.pooling == "maxmean":
        pooled = torch.cat([h.max(0).values, h.mean(0)])
    else:
        u = model.att_v(torch.tanh(model.att_proj(h))).squeeze(-1)  # (T,)
        pooled = (u.softmax(0)[:, None] * h).sum(0)
    return model.head(pooled)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_model_matches_torch_nn_oracle_and_ignores_padding(pooling: str):
    torch.manual_seed(0)
    cfg = TextClassifierConfig(
        vocab_size=30, num_classes=3, embed_dim=6, hidden_size=5, pooling=pooling
    )
    model = TextClassifier(cfg).eval()
    seqs = [torch.randint(2, 30, (n,)) for n in (7, 3, 1, 5)]
    ids = torch.zeros(4, 7, dtype=torch.long)  # padded batch (B, T)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    with torch.no_grad():
        batched = model(ids, torch.tensor([7, 3, 1, 5])).logits  # (4, C)
        for i, s in enumerate(seqs):
            alone = model(s[None]).logits[0]
            assert torch.allclose(batched[i], alone, atol=1e-5), pooling  # padding invariance
            assert torch.allclose(alone, _oracle_logits(model, s), atol=1e-5), pooling
        # Garbage in the padded positions changes nothing either.
        noisy = ids.clone()
        noisy[1, 3:] = 9
        assert torch.allclose(model(noisy, torch.tensor([7, 3, 1, 5])).logits, batched, atol=1e-6)
    out = model(ids, torch.tensor([7, 3, 1, 5]))
    if pooling == "attention":
        assert out.attention.shape == (4, 7)
        assert torch.allclose(out.attention.sum(1), torch.ones(4))
        assert float(out.attention[2, 1:].detach().abs().sum()) == 0.0  # no weight on padding
    else:
        assert out.attention.shape == (4, 0)


def test_gru_unidirectional_multilayer_padding_invariance():
    torch.manual_seed(1)
    cfg = TextClassifierConfig(
        vocab_size=20, num_classes=2, embed_dim=4, hidden_size=3, cell="gru",
        bidirectional=False, num_layers=2, pooling="last", dropout=0.3,
    )  # fmt: skip
    model = TextClassifier(cfg).eval()
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    with torch.no_grad():
        batched = model(ids, torch.tensor([4, 2])).logits
        assert torch.allclose(batched[1], model(ids[1:, :2]).logits[0], atol=1e-6)


def test_class_weighted_loss_matches_the_formula():
    torch.manual_seed(0)
    cfg = TextClassifierConfig(
        vocab_size=10, num_classes=3, embed_dim=4, hidden_size=3, dropout=0.0, embed_dropout=0.0
    )
    model = TextClassifier(cfg)
    batch = ClsBatch(
        torch.tensor([[2, 3], [4, 0], [5, 6]]), torch.tensor([2, 1, 2]), torch.tensor([0, 2, 2])
    )
    w = torch.tensor([0.5, 1.0, 3.0])
    loss = make_loss(w)(model, batch, None).loss
    logp = model(batch.ids, batch.lengths).logits.log_softmax(-1)
    picked = -logp[torch.arange(3), batch.labels]
    expected = (w[batch.labels] * picked).sum() / w[batch.labels].sum()  # weighted mean
    assert torch.allclose(loss, expected)


def test_pretrained_word_vectors(tmp_path: Path):
    vec = tmp_path / "glove.txt"
    vec.write_text("2 3\nFilm 1 2 3\ngreat 0.5 0.5 0.5\nzebra 9 9 9\n", encoding="utf-8")
    vectors, found = load_word_vectors(vec, ["<pad>", "<unk>", "film", "great", "dull"], 3)
    assert found.tolist() == [False, False, True, True, False]  # Film -> film (lower-cased)
    assert vectors[2].tolist() == [1, 2, 3]
    with pytest.raises(UserError, match="has 3 values but model.embed_dim is 4"):
        load_word_vectors(vec, ["<pad>", "<unk>", "film"], 4)
    texts, labels = POS + NEG, [1] * 6 + [0] * 6
    cfg = tiny_config(**{"model.embed_dim": 3, "data.vectors": str(vec), "epochs": 1})
    clf = SentimentClassifier(cfg).fit(texts, labels, val_texts=texts, val_labels=labels)
    assert clf.tokenizer_.stoi_["great"]  # in the vocabulary, so its vector was copied in


# --------------------------------------------------------------------------- metrics


def test_classification_report_by_hand():
    # true: a a a b b c ; pred: a b a b c c
    r = classification_report([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2], ["a", "b", "c"])
    assert r["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert r["accuracy"] == pytest.approx(4 / 6)
    # precision a=2/2, b=1/2, c=1/2; recall a=2/3, b=1/2, c=1/1
    assert r["per_class"]["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    f1 = [0.8, 0.5, 2 * 0.5 / 1.5]
    assert r["macro_f1"] == pytest.approx(sum(f1) / 3)


# --------------------------------------------------------------------------- classifier


def test_loss_falls_and_the_tiny_set_is_learned(fitted: SentimentClassifier):
    losses = fitted.result_.losses
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert fitted.result_.evals[-1]["val_accuracy"] == 1.0
    assert fitted.predict(POS + NEG) == ["pos"] * 6 + ["neg"] * 6
    proba = fitted.predict_proba(["a lovely , funny film", "a dull , tedious mess"])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(1), 1.0, atol=1e-6)
    assert fitted.classes_ == ["neg", "pos"]


def test_prediction_is_the_same_alone_and_in_a_padded_batch(fitted: SentimentClassifier):
    text = "great fun"
    alone = fitted.predict_proba([text])
    batch = fitted.predict_proba(["a long , long , dull and boring story of a film", text, "ok"])
    assert np.allclose(alone[0], batch[1], atol=1e-6)
    order = fitted.predict_proba(["ok", text])  # input order is kept
    assert np.allclose(order[1], alone[0], atol=1e-6)


def test_save_load_gives_identical_probabilities(fitted: SentimentClassifier, tmp_path: Path):
    texts = ["a gripping story", "boring and weak , no fun", "zebra unknown words"]
    fitted.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json", "labels.json", "model.safetensors", "tokenizer.json",
    ]  # fmt: skip
    again = SentimentClassifier.load(tmp_path / "model")
    assert np.array_equal(again.predict_proba(texts), fitted.predict_proba(texts))
    assert again.classes_ == fitted.classes_


def test_explanation_is_gradient_times_input_by_finite_differences(fitted: SentimentClassifier):
    text = "a lovely film but boring"
    exp = fitted.explain(text, target="pos")
    assert exp.label == "pos" and exp.tokens == ["a", "lovely", "film", "but", "boring"]
    assert [text[a:b] for a, b in exp.spans] == exp.tokens
    # score_t = e_t . d log p(y) / d e_t = d/ds log p(y | e_t scaled by s) at s = 1:
    # central differences in float64 on a copy of the model.
    model = fitted.model_
    m64 = TextClassifier(model.config).double().eval()
    m64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    ids = torch.tensor([fitted.tokenizer_.encode(text)])
    e = m64.embed(ids).detach()
    y = fitted.classes_.index(exp.label)
    eps = 1e-6
    for t in range(len(exp.tokens)):
        vals = []
        for s in (1 + eps, 1 - eps):
            e2 = e.clone()
            e2[0, t] *= s
            with torch.no_grad():
                vals.append(float(m64(ids, embeddings=e2).logits.log_softmax(-1)[0, y]))
        assert exp.scores[t] == pytest.approx((vals[0] - vals[1]) / (2 * eps), abs=2e-4)
    assert exp.scores[1] > 0 > exp.scores[4]  # "lovely" for, "boring" against "pos"
    html = sentiment.render_html(exp)
    assert html.count("<span") == 5 and "lovely</span>" in html
    plain = sentiment.render_terminal(exp, color=False)
    assert "\x1b[" not in plain and "most influential: 'lovely'" in plain or "boring" in plain
    assert "\x1b[48;5;" in sentiment.render_terminal(exp, color=True)
    with pytest.raises(UserError, match="model.pooling=attention"):
        fitted.explain(text, method="attention")


def test_multiclass_subword_and_attention(tmp_path: Path):
    texts = POS[:4] + NEG[:4] + ["it is a film", "a story of a film", "the film runs", "a film"]
    labels = ["pos"] * 4 + ["neg"] * 4 + ["neutral"] * 4
    over = {"data.tokenizer": "subword", "data.subword_vocab_size": 300}
    cfg = tiny_config(**over, **{"model.pooling": "attention", "data.class_weights": "balanced"})
    clf = SentimentClassifier(cfg).fit(texts, labels, val_texts=texts, val_labels=labels)
    assert clf.classes_ == ["neg", "neutral", "pos"]
    assert clf.predict_proba(texts).shape == (12, 3)
    exp = clf.explain("a lovely film", method="attention")
    assert sum(exp.scores) == pytest.approx(1.0, abs=1e-5)
    clf.save(tmp_path / "m")
    again = SentimentClassifier.load(tmp_path / "m")
    assert np.array_equal(again.predict_proba(texts), clf.predict_proba(texts))


def test_bad_inputs_to_the_api(fitted: SentimentClassifier):
    with pytest.raises(UserError, match="text 2 is empty"):
        fitted.predict(["fine", "   "])
    with pytest.raises(UserError, match=r"label 'meh' in the evaluation data was not seen"):
        fitted.evaluate(["fine"], ["meh"])
    with pytest.raises(UserError, match="3 texts but 2 labels"):
        SentimentClassifier().fit(["a", "b", "c"], [1, 0])
    with pytest.raises(UserError, match="class_weights must be none or balanced"):
        cfg = tiny_config(**{"data.class_weights": "inverse"})
        SentimentClassifier(cfg).fit(POS + NEG, [1] * 6 + [0] * 6)
    with pytest.raises(RuntimeError, match="not fitted"):
        SentimentClassifier().predict(["x"])


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def tiny_tsv(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.tsv"
    rows = [f"{t}\tpositive" for t in POS] + [f"{t}\tnegative" for t in NEG]
    p.write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return p


def test_cli_end_to_end_on_a_tiny_tsv(tiny_tsv: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    args = ["sentiment", "train", "--data", str(tiny_tsv), "--run-dir", str(run),
            "--data.val_source", str(tiny_tsv), "--model.embed_dim=16",
            "--model.hidden_size=16", "--epochs=40", "--data.batch_size=4", "--train.lr=0.01",
            "--model.dropout=0", "--model.embed_dropout=0", "--train.progress=none"]  # fmt: skip
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "best val_accuracy 1.0000" in out
    assert (run / "best" / "tokenizer.json").is_file() and (run / "metrics.jsonl").is_file()
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(r.get("kind") == "eval" for r in evals) >= 2  # once per epoch until early stop

    assert cli_main(["sentiment", "eval", "--checkpoint", str(run), "--data", str(tiny_tsv),
                     "--json", "m.json"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "accuracy 1.0000" in out and "confusion matrix" in out and "positive" in out
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "m.json").read_text())["confusion"] == [[6, 0], [0, 6]]

    assert cli_main(["sentiment", "predict", "--checkpoint", str(run), "a gripping story"]) == 0
    assert capsys.readouterr().out.startswith("positive\t")
    inp = tmp_path / "in.txt"
    inp.write_text("a dull , boring mess\n\na lovely , gripping story\n", encoding="utf-8")
    assert cli_main(["sentiment", "predict", "--checkpoint", str(run), "--input", str(inp),
                     "--output", "preds.jsonl"]) == 0  # fmt: skip
    preds = [json.loads(x) for x in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert [p["label"] for p in preds] == ["negative", "positive"]
    assert set(preds[0]["probabilities"]) == {"negative", "positive"}
    assert sum(preds[0]["probabilities"].values()) == pytest.approx(1.0)

    assert cli_main(["sentiment", "explain", "--checkpoint", str(run), "lovely but boring",
                     "--html", "why.html", "--color", "never"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "most influential" in out and "<span" in (tmp_path / "why.html").read_text()


def test_killed_training_resumes_to_the_same_model(tiny_tsv: Path, tmp_path: Path, monkeypatch):
    """An interrupt in the middle of step 9 loses at most the steps since the last
    checkpoint; --resume then ends with exactly the model of an uninterrupted run."""
    cfg = tiny_config(**{
        "epochs": 0, "train.max_steps": 12, "train.checkpoint_interval": 5,
        "evals_per_epoch": 0, "train.eval_interval": 4, "model.dropout": 0.3,
        "adversarial_eps": 0.5, "data.source": str(tiny_tsv),
        "data.val_source": str(tiny_tsv),
    })  # fmt: skip
    full = sentiment.train(replace(cfg, run_dir=str(tmp_path / "a")))

    real_make_loss = sentiment.make_loss

    def make_interrupting_loss(*args, **kw):
        loss_fn, calls = real_make_loss(*args, **kw), [0]

        def loss(*a, **k):
            calls[0] += 1
            if calls[0] == 9:
                raise KeyboardInterrupt  # a kill in the middle of step 9
            return loss_fn(*a, **k)

        return loss

    run_b = replace(cfg, run_dir=str(tmp_path / "b"))
    monkeypatch.setattr(sentiment, "make_loss", make_interrupting_loss)
    with pytest.raises(KeyboardInterrupt):
        sentiment.train(run_b)
    monkeypatch.setattr(sentiment, "make_loss", real_make_loss)
    state = json.loads((tmp_path / "b" / "checkpoint" / "trainer_state.json").read_text())
    assert 5 <= state["step"] <= 8  # at most the work since the last checkpoint is lost
    resumed = sentiment.train(run_b, resume=True)
    assert resumed.result_.step == full.result_.step == 12
    texts = POS + NEG + ["an unseen , gripping mess"]
    assert np.array_equal(resumed.predict_proba(texts), full.predict_proba(texts))
    losses = [
        [r["loss"] for r in read_metrics(tmp_path / run / "metrics.jsonl") if "loss" in r]
        for run in ("a", "b")
    ]
    assert losses[0] == losses[1]


def test_cli_bad_inputs_are_one_line_errors(tiny_tsv: Path, tmp_path: Path, capsys, fitted):
    model_dir = tmp_path / "m"
    fitted.save(model_dir)
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("text\tlabel\ncaf\xe9\tpos\n".encode("latin-1"))
    unseen = tmp_path / "unseen.tsv"
    unseen.write_text("text\tlabel\ngood\tpos\nso so\tmeh\n", encoding="utf-8")
    empty = tmp_path / "empty.tsv"
    empty.write_text("text\tlabel\ngood\tpos\n\tneg\n", encoding="utf-8")
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("review,label\ngood,pos\n", encoding="utf-8")
    cases = [
        (["train", "--data", str(nocol)], "no text column 'text'"),
        (["train", "--data", str(latin)], "is not UTF-8 text"),
        (["train", "--data", str(empty)], "line 3: the text is empty"),
        (["train", "--data", str(tiny_tsv), "--model.pooling=sum"], "model.pooling must be"),
        (["train", "--model.hiden_size=3"], "unknown option --model.hiden_size"),
        (["eval", "--checkpoint", str(model_dir), "--data", str(unseen)],
         "label 'meh' in .*unseen.tsv was not seen in training"),
        (["predict", "--checkpoint", str(model_dir), "fine", " "], "text 2 is empty"),
        (["predict", "--checkpoint", str(model_dir)], "pass texts as arguments or --input"),
        (["predict", "--checkpoint", str(tmp_path / "none"), "x"], "does not exist"),
        (["explain", "--checkpoint", str(model_dir), "x", "--target", "meh"], "label 'meh'"),
    ]  # fmt: skip
    for argv, message in cases:
        if argv[0] == "train":
            argv = [*argv, "--run-dir", str(tmp_path / "r")]
        try:
            code = cli_main(["sentiment", *argv])
        except SystemExit as exc:  # argparse-level errors
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2, argv
        assert re.search(message, err), (argv, err)
        assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("preset", ["sst2", "imdb", "tiny"])
def test_presets_load_and_validate(preset: str):
    cfg = sentiment.load_config(preset=preset)
    from dataclasses import replace

    replace(cfg.model, vocab_size=10, num_classes=2).validate()
    assert cfg.epochs > 0 and cfg.train.eval_metric == "val_score"


def test_long_texts_keep_head_and_tail():
    assert sentiment._truncate(list(range(10)), 4) == [0, 1, 8, 9]
    assert sentiment._truncate(list(range(10)), 5) == [0, 1, 2, 8, 9]
    assert sentiment._truncate(list(range(3)), 5) == [0, 1, 2]


def test_word_and_embedding_dropout_only_in_training():
    torch.manual_seed(0)
    cfg = TextClassifierConfig(
        vocab_size=50, num_classes=2, embed_dim=4, hidden_size=3, word_dropout=0.5,
        embed_dropout=0.0,
    )  # fmt: skip
    model = TextClassifier(cfg)
    ids = torch.randint(2, 50, (64, 30))
    ids[:, 25:] = 0  # padding
    e = model.embed_tokens(ids)  # training mode
    W = model.embed.weight
    is_unk = (e == W[1]).all(-1)  # (B, T)
    is_own = (e == W[ids]).all(-1)
    assert bool((is_unk | is_own).all())
    assert 0.4 < float(is_unk[:, :25].float().mean()) < 0.6
    assert not bool(is_unk[:, 25:].any())  # padding is never replaced
    model.eval()
    assert torch.equal(model.embed_tokens(ids), W[ids])
    cfg2 = TextClassifierConfig(vocab_size=50, num_classes=2, embed_dim=4, hidden_size=3,
                                embed_dropout=0.5)  # fmt: skip
    m2 = TextClassifier(cfg2)
    e2 = m2.embed_tokens(ids[:, :25])
    zero = (e2 == 0).all(-1)
    kept = torch.allclose(e2[~zero], 2 * m2.embed.weight[ids[:, :25]][~zero])
    assert kept and 0.4 < float(zero.float().mean()) < 0.6  # whole vectors, scaled by 1/(1-p)


def test_adversarial_loss_perturbs_in_the_steepest_direction():
    torch.manual_seed(0)
    cfg = TextClassifierConfig(
        vocab_size=20, num_classes=2, embed_dim=4, hidden_size=3, dropout=0.0, embed_dropout=0.0
    )
    model = TextClassifier(cfg).double()
    batch = ClsBatch(torch.tensor([[2, 3, 4]]), torch.tensor([3]), torch.tensor([1]))
    eps = 1e-2
    total = make_loss(None, eps)(model, batch, None).loss
    e = model.embed(batch.ids).detach()

    def ce(emb):
        with torch.no_grad():
            return float(F.cross_entropy(model(batch.ids, embeddings=emb).logits, batch.labels))

    adv = float(total.detach()) - ce(e)  # the loss at e + r
    # r is the steepest ascent of norm eps: no random direction of that norm does better,
    # and the increase is eps * ||dL/de|| to first order (central differences, float64).
    for _ in range(20):
        u = torch.randn_like(e)
        assert adv >= ce(e + eps * u / u.norm()) - 1e-12
    grad = torch.zeros_like(e)
    h = 1e-6
    for idx in np.ndindex(*e.shape):
        d = torch.zeros_like(e)
        d[idx] = h
        grad[idx] = (ce(e + d) - ce(e - d)) / (2 * h)
    assert adv - ce(e) == pytest.approx(eps * float(grad.norm()), rel=2e-2)
    model.eval()  # evaluation: no perturbation
    assert float(make_loss(None, eps)(model, batch, None).loss.detach()) == pytest.approx(ce(e))


# --------------------------------------------------------------------------- ensembles


def test_ensemble_averages_its_members_and_saves_and_loads(tiny_tsv: Path, tmp_path: Path):
    cfg = tiny_config(**{
        "ensemble": 2, "epochs": 6, "data.source": str(tiny_tsv),
        "data.val_source": str(tiny_tsv), "run_dir": str(tmp_path / "run"),
    })  # fmt: skip
    ens = sentiment.train(cfg)
    assert isinstance(ens, sentiment.SentimentEnsemble)
    members = [SentimentClassifier.load(tmp_path / "run" / f"member{k}") for k in (1, 2)]
    assert [m.config.train.seed for m in members] == [cfg.train.seed, cfg.train.seed + 1]
    texts = POS + NEG + ["an unseen , gripping mess"]
    probs = [m.predict_proba(texts) for m in members]
    assert not np.allclose(probs[0], probs[1])  # different seeds, different models
    np.testing.assert_allclose(ens.predict_proba(texts), (probs[0] + probs[1]) / 2, rtol=1e-6)
    figures = ens.result_
    assert [m["seed"] for m in figures["members"]] == [cfg.train.seed, cfg.train.seed + 1]
    report = ens.evaluate(POS + NEG, ["positive"] * 6 + ["negative"] * 6)
    assert figures["val_accuracy"] == report["accuracy"]
    # The run directory and a saved copy load back as the same ensemble.
    again = SentimentClassifier.load(tmp_path / "run")
    assert isinstance(again, sentiment.SentimentEnsemble)
    np.testing.assert_array_equal(again.predict_proba(texts), ens.predict_proba(texts))
    copy = SentimentClassifier.load(ens.save(tmp_path / "copy"))
    np.testing.assert_array_equal(copy.predict_proba(texts), ens.predict_proba(texts))
    # --resume on a finished ensemble reloads every member: the same model.
    resumed = sentiment.train(cfg, resume=True)
    np.testing.assert_array_equal(resumed.predict_proba(texts), ens.predict_proba(texts))
    exp = ens.explain("a lovely but dull story")
    assert exp.label == ens.predict(["a lovely but dull story"])[0]
    assert len(exp.scores) == len(exp.tokens) == 5


def test_ensemble_members_in_parallel_processes_equal_one_at_a_time(
    tiny_tsv: Path, tmp_path: Path, capsys
):
    base = ["sentiment", "train", "--data", str(tiny_tsv), "--data.val_source", str(tiny_tsv),
            "--ensemble=2", "--epochs=3", "--model.embed_dim=8", "--model.hidden_size=8",
            "--data.batch_size=4", "--train.progress=none", "--train.plot=false"]  # fmt: skip
    assert cli_main([*base, "--run-dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "done: ensemble of 2" in out and out.count("member ") == 2
    assert cli_main([*base, "--run-dir", str(tmp_path / "b"), "--jobs", "2"]) == 0
    a, b = (SentimentClassifier.load(tmp_path / d) for d in "ab")
    np.testing.assert_array_equal(a.predict_proba(POS + NEG), b.predict_proba(POS + NEG))
    # eval and predict take the ensemble's run directory like any other
    assert cli_main(["sentiment", "eval", "--checkpoint", str(tmp_path / "b"), "--plot", ""]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert (
        cli_main(["sentiment", "predict", "--checkpoint", str(tmp_path / "b"), "a fun story"]) == 0
    )
    assert capsys.readouterr().out.split("\t")[0] in ("positive", "negative")
    assert cli_main([*base, "--run-dir", str(tmp_path / "c"), "--jobs", "0"]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
