"""SentimentClassifier: the estimator contract, fit, predict, explain, save/load, resume."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit import NotFittedError, SentimentClassifier
from rnnkit.errors import UserError
from rnnkit.sentiment import load_config
from rnnkit.sentiment import train as sentiment_train
from rnnkit.sentiment.data import truncate
from rnnkit.sentiment.model import TextClassifier
from rnnkit.sentiment.report import (
    classification_report,
    plot_confusion,
    render_html,
    render_terminal,
)
from rnnkit.training import read_metrics

# --------------------------------------------------------------------------- metrics, plots


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


def test_confusion_plot_returns_a_figure_and_saves_on_request(tmp_path: Path):
    from matplotlib.figure import Figure

    r = classification_report([0, 0, 1], [0, 1, 1], ["neg", "pos"])
    backend = __import__("matplotlib").get_backend()
    fig = plot_confusion(r, title="dev")
    assert isinstance(fig, Figure) and not list(tmp_path.iterdir())
    fig = plot_confusion(r, tmp_path / "sub" / "cm.png")
    assert isinstance(fig, Figure)
    assert (tmp_path / "sub" / "cm.png").read_bytes()[:4] == b"\x89PNG"
    assert __import__("matplotlib").get_backend() == backend  # no global backend switch


# --------------------------------------------------------------------------- the contract


def test_construct_from_a_preset_with_overrides():
    clf = SentimentClassifier(preset="sst2", epochs=3, hidden_size=64, seed=5, device="cpu")
    assert clf.config.epochs == 3 and clf.config.model.hidden_size == 64
    assert clf.config.ensemble == 3 and clf.config.model.cell == "gru"  # the rest of the preset
    assert clf.seed == 5 and "epochs=3" in repr(clf)
    clf = SentimentClassifier(data__batch_size=8, model__pooling="attention")
    assert clf.config.data.batch_size == 8 and clf.config.model.pooling == "attention"
    with pytest.raises(UserError, match="unknown option hiden_size"):
        SentimentClassifier(hiden_size=3)
    with pytest.raises(UserError, match="unknown preset 'nope'"):
        SentimentClassifier(preset="nope")


def test_unfitted_use_raises_not_fitted_error():
    clf = SentimentClassifier()
    for call in (
        lambda: clf.predict(["x"]),
        lambda: clf.predict_proba(["x"]),
        lambda: clf.evaluate(["x"], [1]),
        lambda: clf.explain("x"),
        lambda: clf.save("never"),
        lambda: clf.classes_,
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    assert not hasattr(clf, "classes_")  # scikit-learn's check_is_fitted idiom


def test_fit_returns_self_and_leaves_the_fitted_state(fitted: SentimentClassifier, pos, neg):
    losses = fitted.result_.losses
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])  # the loss falls
    assert fitted.result_.evals[-1]["val_accuracy"] == 1.0
    assert fitted.history_ == fitted.result_.evals
    assert fitted.metrics_["val_accuracy"] == 1.0
    assert fitted.metrics_["measured_on"] == "the validation texts passed to fit (12 texts)"
    assert fitted.model_ is not None and not fitted.model_.training
    assert fitted.members_ == []
    assert fitted.predict(pos + neg) == ["pos"] * 6 + ["neg"] * 6
    proba = fitted.predict_proba(["a lovely , funny film", "a dull , tedious mess"])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(1), 1.0, atol=1e-6)
    assert fitted.classes_ == ["neg", "pos"]


def test_evaluate_returns_a_json_ready_dict(fitted: SentimentClassifier, pos, neg):
    report = fitted.evaluate(pos + neg, ["pos"] * 6 + ["neg"] * 6)
    assert json.loads(json.dumps(report)) == report
    assert report["accuracy"] == 1.0 and report["confusion"] == [[6, 0], [0, 6]]
    assert report["classes"] == ["neg", "pos"] and report["n"] == 12


def test_prediction_is_the_same_alone_and_in_a_padded_batch(fitted: SentimentClassifier):
    text = "great fun"
    alone = fitted.predict_proba([text])
    batch = fitted.predict_proba(["a long , long , dull and boring story of a film", text, "ok"])
    assert np.allclose(alone[0], batch[1], atol=1e-6)
    order = fitted.predict_proba(["ok", text])  # input order is kept
    assert np.allclose(order[1], alone[0], atol=1e-6)
    assert np.array_equal(fitted.predict_proba(text), alone)  # one string is one text


def test_save_load_gives_identical_predictions(fitted: SentimentClassifier, tmp_path: Path):
    texts = ["a gripping story", "boring and weak , no fun", "zebra unknown words"]
    fitted.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "README.md", "config.json", "labels.json", "manifest.json", "model.safetensors",
        "tokenizer.json",
    ]  # fmt: skip
    again = SentimentClassifier.load(tmp_path / "model")
    assert np.array_equal(again.predict_proba(texts), fitted.predict_proba(texts))
    assert again.predict(texts) == fitted.predict(texts)
    assert again.classes_ == fitted.classes_
    assert again.metrics_["val_accuracy"] == fitted.metrics_["val_accuracy"]
    # A folder written before manifests and model cards (the old layout) still loads.
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "model", old)
    (old / "manifest.json").unlink()
    (old / "README.md").unlink()
    assert np.array_equal(
        SentimentClassifier.load(old).predict_proba(texts), again.predict_proba(texts)
    )
    # A damaged file is refused, naming it.
    (old / "labels.json").write_text('{"classes": ["a"]}', encoding="utf-8")
    with pytest.raises(UserError, match="labels.json is malformed"):
        SentimentClassifier.load(old)


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
    html = render_html(exp)
    assert html.count("<span") == 5 and "lovely</span>" in html
    assert exp._repr_html_() == html  # a notebook shows the highlighted text
    assert json.loads(json.dumps(exp.to_dict()))["spans"][1] == [2, 8]
    plain = render_terminal(exp, color=False)
    assert "\x1b[" not in plain and "most influential: " in plain
    assert "\x1b[48;5;" in render_terminal(exp, color=True)
    with pytest.raises(UserError, match="model.pooling=attention"):
        fitted.explain(text, method="attention")


def test_multiclass_subword_and_attention(tmp_path: Path, tiny_config, pos, neg):
    texts = pos[:4] + neg[:4] + ["it is a film", "a story of a film", "the film runs", "a film"]
    labels = ["pos"] * 4 + ["neg"] * 4 + ["neutral"] * 4
    over = {"data.tokenizer": "subword", "data.subword_vocab_size": 300}
    cfg = tiny_config(**over, **{"model.pooling": "attention", "data.class_weights": "balanced"})
    clf = SentimentClassifier(cfg, verbose=False)
    assert clf.fit(texts, labels, val_texts=texts, val_labels=labels) is clf
    assert clf.classes_ == ["neg", "neutral", "pos"]
    assert clf.predict_proba(texts).shape == (12, 3)
    exp = clf.explain("a lovely film", method="attention")
    assert sum(exp.scores) == pytest.approx(1.0, abs=1e-5)
    clf.save(tmp_path / "m")
    again = SentimentClassifier.load(tmp_path / "m")
    assert np.array_equal(again.predict_proba(texts), clf.predict_proba(texts))


def test_pretrained_word_vectors_in_fit(tmp_path: Path, tiny_config, pos, neg):
    vec = tmp_path / "glove.txt"
    vec.write_text("2 3\nFilm 1 2 3\ngreat 0.5 0.5 0.5\nzebra 9 9 9\n", encoding="utf-8")
    texts, labels = pos + neg, [1] * 6 + [0] * 6
    cfg = tiny_config(**{"model.embed_dim": 3, "data.vectors": str(vec), "epochs": 1})
    clf = SentimentClassifier(cfg, verbose=False).fit(
        texts, labels, val_texts=texts, val_labels=labels
    )
    assert clf.tokenizer_.stoi_["great"]  # in the vocabulary, so its vector was copied in


def test_bad_inputs_to_the_api(fitted: SentimentClassifier, tiny_config, pos, neg):
    with pytest.raises(UserError, match="text 2 is empty"):
        fitted.predict(["fine", "   "])
    with pytest.raises(UserError, match=r"label 'meh' in the evaluation data was not seen"):
        fitted.evaluate(["fine"], ["meh"])
    with pytest.raises(UserError, match="3 texts but 2 labels"):
        SentimentClassifier().fit(["a", "b", "c"], [1, 0])
    with pytest.raises(UserError, match="class_weights must be none or balanced"):
        cfg = tiny_config(**{"data.class_weights": "inverse"})
        SentimentClassifier(cfg, verbose=False).fit(pos + neg, [1] * 6 + [0] * 6)
    with pytest.raises(UserError, match="device 'cuda:9'|device 'cuda:9' does not exist"):
        SentimentClassifier(device="cuda:9").fit(["a", "b"], [0, 1])


def test_presets_load_and_validate():
    for preset in ("sst2", "sst2_phrases", "imdb", "tiny"):
        cfg = load_config(preset=preset)
        replace(cfg.model, vocab_size=10, num_classes=2).validate()
        assert cfg.epochs > 0 and cfg.train.eval_metric == "val_score"


def test_long_texts_keep_head_and_tail():
    assert truncate(list(range(10)), 4) == [0, 1, 8, 9]
    assert truncate(list(range(10)), 5) == [0, 1, 2, 8, 9]
    assert truncate(list(range(3)), 5) == [0, 1, 2]


# --------------------------------------------------------------------------- runs


def test_fit_without_data_reads_the_config_and_refuses_a_used_run_dir(
    tiny_tsv: Path, tmp_path: Path, tiny_config, capsys
):
    cfg = tiny_config(**{"epochs": 2, "data.source": str(tiny_tsv)})
    run = tmp_path / "run"
    clf = SentimentClassifier(cfg, verbose=False)
    assert clf.fit(run_dir=run) is clf
    assert (run / "best" / "tokenizer.json").is_file() and (run / "metrics.jsonl").is_file()
    assert clf.metrics_["measured_on"].startswith(f"a seeded 0.1 of {tiny_tsv}")
    assert capsys.readouterr().err == ""  # verbose=False: silent
    with pytest.raises(UserError, match="already holds a run.*--overwrite"):
        SentimentClassifier(cfg, verbose=False).fit(run_dir=run)
    again = SentimentClassifier(cfg, verbose=False).fit(run_dir=run, overwrite=True)
    assert np.array_equal(again.predict_proba(["a fun story"]), clf.predict_proba(["a fun story"]))
    # evaluate() without data: the validation data of training, when it has a name
    with pytest.raises(UserError, match="has no dev split; pass labelled data"):
        clf.evaluate()
    val = SentimentClassifier(
        replace(cfg, data=replace(cfg.data, val_source=str(tiny_tsv))), verbose=False
    ).fit(run_dir=tmp_path / "run2")
    assert val.evaluate()["n"] == 12


def test_killed_training_resumes_to_the_same_model(
    tiny_tsv: Path, tmp_path: Path, monkeypatch, tiny_config, pos, neg
):
    """An interrupt in the middle of step 9 loses at most the steps since the last
    checkpoint; resume=True then ends with exactly the model of an uninterrupted run."""
    cfg = tiny_config(**{
        "epochs": 0, "train.max_steps": 12, "train.checkpoint_interval": 5,
        "evals_per_epoch": 0, "train.eval_interval": 4, "model.dropout": 0.3,
        "adversarial_eps": 0.5, "data.source": str(tiny_tsv),
        "data.val_source": str(tiny_tsv),
    })  # fmt: skip
    full = SentimentClassifier(cfg, verbose=False).fit(run_dir=tmp_path / "a")

    real_make_loss = sentiment_train.make_loss

    def make_interrupting_loss(*args, **kw):
        loss_fn, calls = real_make_loss(*args, **kw), [0]

        def loss(*a, **k):
            calls[0] += 1
            if calls[0] == 9:
                raise KeyboardInterrupt  # a kill in the middle of step 9
            return loss_fn(*a, **k)

        return loss

    monkeypatch.setattr(sentiment_train, "make_loss", make_interrupting_loss)
    with pytest.raises(KeyboardInterrupt):
        SentimentClassifier(cfg, verbose=False).fit(run_dir=tmp_path / "b")
    monkeypatch.setattr(sentiment_train, "make_loss", real_make_loss)
    state = json.loads((tmp_path / "b" / "checkpoint" / "trainer_state.json").read_text())
    assert 5 <= state["step"] <= 8  # at most the work since the last checkpoint is lost
    with pytest.raises(UserError, match="already holds a run"):
        SentimentClassifier(cfg, verbose=False).fit(run_dir=tmp_path / "b")
    resumed = SentimentClassifier(cfg, verbose=False).fit(run_dir=tmp_path / "b", resume=True)
    assert resumed.result_.step == full.result_.step == 12
    texts = pos + neg + ["an unseen , gripping mess"]
    assert np.array_equal(resumed.predict_proba(texts), full.predict_proba(texts))
    losses = [
        [r["loss"] for r in read_metrics(tmp_path / run / "metrics.jsonl") if "loss" in r]
        for run in ("a", "b")
    ]
    assert losses[0] == losses[1]
