"""The levers of issue 17 (60 minutes on 2 cores): encoder depth, BPE-dropout, checkpoint
averaging, the multi30k_60min preset. (Length normalisation: test_translate_model.py.)

Oracles: torch.nn.GRU with the same weights (encoder depth), torch arithmetic (the
average of state dicts), an uninterrupted run (a resumed one must equal it exactly).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from digit_corpus import digit_corpus
from torch import nn

import rnnkit.translate.estimator as estimator_module
from rnnkit import Translator
from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.training import load_model_weights, load_tensors, write_checkpoint
from rnnkit.translate import TranslateConfig, load_config
from rnnkit.translate.averaging import Snapshots, average_weights
from rnnkit.translate.config import check_config
from rnnkit.translate.data import PairBatches, make_batch
from rnnkit.translate.model import Seq2Seq, Seq2SeqConfig

QUIET = {"progress": "none", "plot": False}
SMALL = {"hidden_size": 16, "embed_dim": 16, "warmup_steps": 2, **QUIET}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_corpus = digit_corpus


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_tensors(folder / "model.safetensors")


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- encoder depth


def _seq2seq(seed: int = 0, **kw) -> Seq2Seq:
    torch.manual_seed(seed)
    base = {"src_vocab_size": 11, "tgt_vocab_size": 12, "embed_dim": 6, "hidden_size": 5}
    return Seq2Seq(Seq2SeqConfig(**{**base, "dropout": 0.0, **kw})).eval()


def test_encoder_layers_default_to_num_layers() -> None:
    a, b = _seq2seq(num_layers=2), _seq2seq(num_layers=2, encoder_layers=2)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    # A config saved before the key existed loads with the default, and the same model.
    raw = config_lib.to_dict(TranslateConfig())
    del raw["model"]["encoder_layers"]
    assert config_lib.from_dict(TranslateConfig, raw).model.encoder_layers == 0


@torch.no_grad()
def test_a_deeper_encoder_starts_the_decoder_from_its_top_layer() -> None:
    """2-layer encoder, 1-layer decoder, against torch.nn.GRU with the same weights."""
    model = _seq2seq(encoder_layers=2, num_layers=1)
    one = _seq2seq(encoder_layers=1, num_layers=1)
    E, H = 6, 5
    layer2 = 2 * (3 * H * 2 * H + 3 * H * H + 2 * 3 * H)  # per direction: W_ih, W_hh, biases
    n = sum(p.numel() for p in model.parameters())
    assert n == sum(p.numel() for p in one.parameters()) + layer2
    oracle = nn.GRU(E, H, num_layers=2, bidirectional=True, batch_first=True)
    oracle.load_state_dict(model.encoder.state_dict())
    b = make_batch([[2, 3, 4, 5], [6, 7]], [[2], [3]], range(2), model.bos_id, model.eos_id)
    memory, state = model.encode(b.src, b.src_len)
    x = model.src_embed(b.src)  # (B, S, E)
    packed = nn.utils.rnn.pack_padded_sequence(x, b.src_len, batch_first=True)
    out, h_n = oracle(packed)  # h_n (2 layers * 2 directions, B, H)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    torch.testing.assert_close(memory.out, out)
    top = torch.cat([h_n[2], h_n[3]], dim=-1)  # layer 1 (the top), forward and backward
    torch.testing.assert_close(state.rnn, torch.tanh(model.bridge[0](top))[None])
    assert memory.out.shape == (2, 4, 2 * H) and state.rnn.shape == (1, 2, H)


@torch.no_grad()
def test_a_shallower_encoder_starts_every_decoder_layer_and_saves(tmp_path: Path) -> None:
    model = _seq2seq(cell="lstm", encoder_layers=1, num_layers=2)
    b = make_batch([[2, 3, 4]], [[2, 3]], range(1), model.bos_id, model.eos_id)
    _, state = model.encode(b.src, b.src_len)
    h, c = state.rnn
    assert h.shape == (2, 1, 5) and c.shape == (2, 1, 5)
    torch.testing.assert_close(h[0], h[1])  # both decoder layers from encoder layer 0
    torch.testing.assert_close(c[0], c[1])
    write_checkpoint(tmp_path / "m", model=model, config={})
    again = _seq2seq(seed=1, cell="lstm", encoder_layers=1, num_layers=2)
    load_model_weights(again, tmp_path / "m")
    torch.testing.assert_close(
        again(b.src, b.src_len, b.tgt_in).logits, model(b.src, b.src_len, b.tgt_in).logits
    )


def test_encoder_layers_in_a_fitted_translator_save_and_load(tmp_path: Path) -> None:
    tr = Translator(preset="tiny", max_steps=2, encoder_layers=2, seed=0, **SMALL)
    tr.fit(_corpus(40, 0), val_pairs=_corpus(5, 1))
    assert tr.model_.encoder.num_layers == 2 and tr.model_.decoder.num_layers == 1
    again = Translator.load(tr.save(tmp_path / "m"))
    assert again.config.model.encoder_layers == 2
    sentences = [p[0] for p in _corpus(6, 2)]
    assert again.translate(sentences, beam=2) == tr.translate(sentences, beam=2)


# --------------------------------------------------------------------------- BPE-dropout


def test_resampled_batches_change_with_the_epoch_and_repeat_with_it() -> None:
    src = [[2, 3], [4], [5, 6, 7]]
    tgt = [[3], [4, 4], [5]]

    def resample(epoch: int) -> tuple[list[list[int]], list[list[int]]]:
        rng = random.Random(epoch)  # a stand-in segmentation: a function of the epoch
        return [s * rng.randint(1, 3) for s in src], [t * rng.randint(1, 3) for t in tgt]

    batches = PairBatches(src, tgt, 2, bos=8, eos=9, seed=1, resample=resample)

    def epoch(e: int) -> list[list[int]]:
        batches.set_epoch(e)
        return [row for b in batches for row in b.src.tolist()]

    first = epoch(0)
    assert first != epoch(1) and first == epoch(0)
    fixed = PairBatches(src, tgt, 2, bos=8, eos=9, seed=1)
    fixed.set_epoch(1)
    assert fixed.src == src  # without resample, set_epoch keeps the encodings
    with pytest.raises(ValueError, match="must segment the same pairs"):
        PairBatches(src, tgt, 2, bos=8, eos=9, resample=lambda e: (src[:2], tgt[:2])).set_epoch(0)


def test_bpe_dropout_segments_training_only_and_resumes_exactly(tmp_path: Path) -> None:
    """Training pairs are segmented again every epoch (seeded); validation and translation
    are not; a resumed run equals one never interrupted, average included."""
    pairs, val = _corpus(40, 0), _corpus(6, 1)
    # A constant learning rate: the cosine schedule's length is max_steps, which differs.
    opts = {"bpe_dropout": 0.3, "average_last": 2, "eval_interval": 4, "lr_decay": "constant"}
    straight = Translator(preset="tiny", max_steps=12, seed=0, **opts, **SMALL)
    straight.fit(pairs, val_pairs=val, run_dir=tmp_path / "a")
    first = Translator(preset="tiny", max_steps=6, seed=0, **opts, **SMALL)
    first.fit(pairs, val_pairs=val, run_dir=tmp_path / "b")  # 3 epochs of 2 batches
    resumed = Translator(preset="tiny", max_steps=12, seed=0, **opts, **SMALL)
    resumed.fit(pairs, val_pairs=val, run_dir=tmp_path / "b", resume=True)
    for name in ("checkpoint", "average"):  # the last weights; the average of steps 8, 12
        assert _same(_weights(tmp_path / "a" / name), _weights(tmp_path / "b" / name)), name
    # BPE-dropout changed the training data: without it the weights differ.
    plain = Translator(preset="tiny", max_steps=12, seed=0, **{**opts, "bpe_dropout": 0.0}, **SMALL)
    plain.fit(pairs, val_pairs=val, run_dir=tmp_path / "c")
    assert not _same(
        _weights(tmp_path / "a" / "checkpoint"), _weights(tmp_path / "c" / "checkpoint")
    )

    texts = [p[0] for p in pairs]
    resample = straight._bpe_dropout(texts, texts, 0.3, seed=0)  # what fit() gives the batches
    assert resample(1) == resample(1) and resample(1) != resample(2)
    tok = straight.src_tokenizer_
    assert [tok.decode(x) for x in resample(1)[0]] == texts
    texts = [p[0] for p in val]
    assert straight._encode_src(texts) == [tok.encode(t) for t in texts]  # deterministic
    assert straight.translate(texts, beam=1) == straight.translate(texts, beam=1)
    assert straight.evaluate(val, beam=1)["bleu"] == pytest.approx(straight.metrics_["bleu"])
    saved = json.loads((tmp_path / "a" / "best" / "tokenizer.json").read_text(encoding="utf-8"))
    assert json.loads(saved["src"]["tokenizer"])["model"]["dropout"] is None


# --------------------------------------------------------------------------- averaging


def test_average_of_identical_states_is_the_state_and_of_two_the_mean() -> None:
    torch.manual_seed(0)
    a = {"w": torch.randn(3, 4), "b": torch.randn(4).double(), "n": torch.tensor(3)}
    b = {"w": torch.randn(3, 4), "b": torch.randn(4).double(), "n": torch.tensor(5)}
    same = average_weights([a] * 5)
    assert all(torch.equal(same[k], a[k]) and same[k].dtype == a[k].dtype for k in a)
    mean = average_weights([a, b])
    assert torch.equal(mean["w"], (a["w"] + b["w"]) / 2)  # torch's float32 arithmetic
    torch.testing.assert_close(mean["b"], (a["b"] + b["b"]) / 2)
    assert int(mean["n"]) == 5  # integers are not averaged: the last state's
    with pytest.raises(ValueError, match="differ in their keys"):
        average_weights([a, {"w": a["w"]}])
    with pytest.raises(ValueError, match="has shape"):
        average_weights([a, {**a, "w": torch.zeros(2)}])


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
def test_snapshots_keep_the_last_k_and_forget_a_future(tmp_path: Path, on_disk: bool) -> None:
    model = nn.Linear(2, 2)
    snaps = Snapshots(2, tmp_path / "snapshots" if on_disk else None)
    for step in (10, 20, 30):
        with torch.no_grad():
            model.weight.fill_(step)
        snaps.add(model, step)
    assert snaps.steps() == [20, 30]
    with torch.no_grad():
        model.weight.fill_(25)
    snaps.add(model, 25)  # a run resumed from step 20: the old step 30 is gone
    assert snaps.steps() == [20, 25]
    assert [float(s["weight"][0, 0]) for s in snaps.states(model)] == [20.0, 25.0]
    assert float(model.weight.detach()[0, 0]) == 25.0  # reading snapshots leaves it alone
    snaps.clear()
    assert snaps.steps() == [] and not (tmp_path / "snapshots").exists()


def _scripted_bleu(monkeypatch: pytest.MonkeyPatch, values: list[float]) -> None:
    """The validation BLEU of each evaluation, in order (the last: the average's)."""
    left = iter(values)
    monkeypatch.setattr(estimator_module, "score", lambda h, r: {"bleu": next(left)})


def test_the_average_is_kept_when_it_scores_better(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scripted_bleu(monkeypatch, [10.0, 30.0, 20.0, 40.0])  # steps 2, 4, 6; then the average
    run = tmp_path / "run"
    tr = Translator(preset="tiny", max_steps=6, eval_interval=2, average_last=3, seed=0, **SMALL)
    tr.fit(_corpus(40, 0), val_pairs=_corpus(5, 1), run_dir=run)
    snaps = [_weights(run / "snapshots" / f"step-{s:07d}") for s in (2, 4, 6)]
    mean = average_weights(snaps)
    assert _same(_weights(run / "average"), mean) and _same(_weights(run / "best"), mean)
    own = {k: v for k, v in tr.model_.state_dict().items() if k in mean}
    assert _same(own, mean)
    assert _same(_weights(run / "best_single"), snaps[1])  # step 4, BLEU 30
    m = tr.metrics_
    assert m["bleu"] == 40.0 and m["single_bleu"] == 30.0 and m["averaged_checkpoints"] == 3
    assert "average of the weights at steps 2, 4, 6" in m["measured_on"]
    assert Translator.load(run).metrics_ == m  # best/ is the kept model, load(run) gives it
    card = (tr.save(tmp_path / "saved") / "README.md").read_text(encoding="utf-8")
    assert "average of the weights at steps 2, 4, 6" in card and "averaged_checkpoints" in card

    # Resumed, the run continues from its own best (best_single/ goes back to best/).
    _scripted_bleu(monkeypatch, [25.0, 5.0])  # step 8; then the average of steps 6 and 8
    again = Translator(preset="tiny", max_steps=8, eval_interval=2, average_last=2, **SMALL)
    again.fit(_corpus(40, 0), val_pairs=_corpus(5, 1), run_dir=run, resume=True)
    assert _same(_weights(run / "best"), snaps[1]) and not (run / "best_single").exists()
    assert again.metrics_["bleu"] == 30.0 and again.metrics_["average_bleu"] == 5.0


def test_the_average_is_not_kept_when_it_scores_worse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scripted_bleu(monkeypatch, [10.0, 30.0, 20.0, 29.0])
    run = tmp_path / "run"
    tr = Translator(preset="tiny", max_steps=6, eval_interval=2, average_last=2, seed=0, **SMALL)
    tr.fit(_corpus(40, 0), val_pairs=_corpus(5, 1), run_dir=run)
    best = _weights(run / "best")
    assert _same(best, _weights(run / "snapshots" / "step-0000004"))  # the loop's best
    own = {k: v for k, v in tr.model_.state_dict().items() if k in best}
    assert _same(own, best) and not (run / "best_single").exists()
    steps = sorted(p.name for p in (run / "snapshots").iterdir())
    assert steps == ["step-0000004", "step-0000006"]  # the last two
    assert tr.metrics_["bleu"] == 30.0 and tr.metrics_["average_bleu"] == 29.0
    assert "scored bleu 29.0000 and was not kept" in tr.metrics_["measured_on"]
    # A new run in the same directory starts without the old averaging folders.
    _scripted_bleu(monkeypatch, [1.0])
    Translator(preset="tiny", max_steps=2, **SMALL).fit(
        _corpus(40, 0), val_pairs=_corpus(5, 1), run_dir=run, overwrite=True
    )
    assert not (run / "average").exists() and not (run / "snapshots").exists()


def test_averaging_without_a_run_directory_keeps_the_better_in_memory() -> None:
    tr = Translator(preset="tiny", max_steps=9, eval_interval=3, average_last=3, seed=0, **SMALL)
    val = _corpus(8, 1)
    tr.fit(_corpus(60, 0), val_pairs=val)
    assert ("averaged_checkpoints" in tr.metrics_) != ("average_bleu" in tr.metrics_)
    # The kept model is the one measured: its greedy BLEU on the same pairs.
    assert tr.evaluate(val, beam=1)["bleu"] == pytest.approx(tr.metrics_["bleu"])


# --------------------------------------------------------------------------- config, preset


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"average_last": 1}, "average_last must be 0 .off. or the number"),
        ({"average_last": -2}, "average_last must be 0"),
        ({"data.bpe_dropout": 1.0}, r"data.bpe_dropout must be in \[0, 1\)"),
        ({"model.encoder_layers": -1}, "model.encoder_layers must be >= 0"),
    ],
)
def test_bad_values_are_one_line_errors(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        check_config(load_config(overrides=overrides))
    assert "\n" not in str(info.value)


def test_the_60_minute_preset_lets_the_budget_decide_and_trains() -> None:
    cfg = load_config(preset="multi30k_60min")
    assert cfg.train.max_seconds == 3300 and cfg.train.max_steps == 0
    assert cfg.epochs * 454 > 3300 * 4  # more steps than 4 a second could reach: time decides
    assert cfg.train.early_stopping_patience == 0  # the budget, not patience, ends it
    assert (cfg.model.encoder_layers, cfg.average_last, cfg.data.bpe_dropout) == (2, 5, 0.0)
    assert load_config(preset="multi30k").average_last == 0  # the old preset is unchanged
    small = replace(cfg.data, vocab_size=300)
    tr = Translator(replace(cfg, data=small), verbose=False)
    tr.set_params(max_steps=2, max_seconds=0.0, hidden_size=32, embed_dim=32, **QUIET)
    tr.fit(_corpus(40, 0), val_pairs=_corpus(5, 1))
    assert tr.result_.step == 2 and tr.model_.encoder.num_layers == 2
