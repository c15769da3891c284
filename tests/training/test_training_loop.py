"""The training loop: schedule, clipping, accumulation, resume, NaN, early stopping, output."""

from __future__ import annotations

import io
import json
import math
import os
import shutil

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from rnnkit.errors import UserError
from rnnkit.textgen.data import RandomWindows, StreamBatches
from rnnkit.training import (
    Progress,
    StepResult,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    lr_at,
    read_metrics,
    reset_state_rows,
    resolve_checkpoint,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: thread hand-offs cost more than they bring on a shared 2-core box.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TinyLM(nn.Module):
    """A plain torch.nn model: the loop must not care what it trains."""

    def __init__(self, vocab: int = 7, hidden: int = 16, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.rnn = nn.GRU(8, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        h, state = self.rnn(self.embed(x), state)
        return self.head(self.drop(h)), state


def lm_loss(model, batch, state):
    logits, state = model(batch.x, state)
    loss = F.cross_entropy(logits.flatten(0, 1), batch.y.flatten())
    return StepResult(loss, state, batch.y.numel())


def _stream(n: int = 2000, vocab: int = 7, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # A learnable pattern with noise: next = (cur + 1) % vocab most of the time.
    ids = torch.zeros(n, dtype=torch.long)
    noise = torch.rand(n, generator=g) < 0.2
    rand = torch.randint(0, vocab, (n,), generator=g)
    for i in range(1, n):
        ids[i] = rand[i] if noise[i] else (ids[i - 1] + 1) % vocab
    return ids


def _cfg(**kw) -> TrainConfig:
    base = dict(
        max_steps=12,
        lr=1e-2,
        warmup_steps=2,
        eval_interval=4,
        checkpoint_interval=5,
        progress="none",
        plot=False,
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(max_steps=110, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)  # half way: (1 + cos(pi/2)) / 2
    assert lr_at(110, cfg) == pytest.approx(0.1)
    const = TrainConfig(max_steps=110, lr=1.0, warmup_steps=0, lr_decay="constant")
    assert lr_at(77, const) == 1.0


def test_clipping_logs_preclip_norm_and_applies_clipped_update(tmp_path):
    torch.manual_seed(0)
    model = TinyLM()
    ids = _stream(400)
    data = StreamBatches(ids, 4, 10)
    # Oracle: gradient of the first batch computed by hand on a copy.
    ref = TinyLM()
    ref.load_state_dict(model.state_dict())
    batch = next(iter(data))
    lm_loss(ref, batch, None).loss.backward()
    grads = [p.grad.clone() for p in ref.parameters()]
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()
    clip = norm / 4
    before = [p.detach().clone() for p in model.parameters()]
    cfg = _cfg(
        max_steps=1,
        optimizer="sgd",
        momentum=0.0,
        lr=0.5,
        warmup_steps=0,
        grad_clip=clip,
        eval_interval=0,
        lr_decay="constant",
    )
    Trainer(model, lm_loss, data, config=cfg, run_dir=tmp_path).fit()
    rec = read_metrics(tmp_path / "metrics.jsonl")[0]
    assert rec["grad_norm"] == pytest.approx(norm, rel=1e-5)
    for p0, p1, g in zip(before, model.parameters(), grads, strict=True):
        torch.testing.assert_close(p1.detach(), p0 - 0.5 * g * (clip / norm), rtol=1e-4, atol=1e-6)


def test_grad_accumulation_equals_one_big_batch():
    ids = _stream(800)
    torch.manual_seed(0)
    a = TinyLM()
    b = TinyLM()
    b.load_state_dict(a.state_dict())
    small = StreamBatches(ids, 4, 10)
    cfg = _cfg(
        max_steps=1,
        optimizer="sgd",
        momentum=0.0,
        lr=0.3,
        warmup_steps=0,
        grad_clip=0.0,
        eval_interval=0,
        grad_accum_steps=2,
        carry_state=False,
        lr_decay="constant",
    )
    Trainer(a, lm_loss, small, config=cfg).fit()
    # Oracle: plain torch SGD on the two micro-batches concatenated.
    it = iter(small)
    b1, b2 = next(it), next(it)
    x, y = torch.cat([b1.x, b2.x]), torch.cat([b1.y, b2.y])
    logits, _ = b(x)
    F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
    with torch.no_grad():
        for p in b.parameters():
            p -= 0.3 * p.grad
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_loss_falls_and_outputs_are_written(tmp_path):
    torch.manual_seed(0)
    ids = _stream(3000)
    cfg = _cfg(max_steps=60, eval_interval=30, checkpoint_interval=30, plot=True)
    res = Trainer(
        TinyLM(),
        lm_loss,
        StreamBatches(ids[:2500], 8, 20),
        val_data=StreamBatches(ids[2500:], 4, 20),
        config=cfg,
        run_dir=tmp_path,
    ).fit()
    assert sum(res.losses[-5:]) / 5 < sum(res.losses[:5]) / 5 - 0.3
    assert res.evals[-1]["val_loss"] < res.evals[0]["val_loss"]
    assert math.log(7) > res.evals[-1]["val_loss"]
    for name in ("metrics.jsonl", "curves.png", "checkpoint", "best"):
        assert (tmp_path / name).exists(), name
    recs = read_metrics(tmp_path / "metrics.jsonl")
    steps = [r["step"] for r in recs if "loss" in r]
    assert steps == list(range(1, 61))
    assert all({"lr", "grad_norm", "tokens_per_s"} <= set(r) for r in recs if "loss" in r)
    assert [r["step"] for r in recs if r.get("kind") == "eval"] == [30, 60]


class _Interrupt:
    """A loss function that raises KeyboardInterrupt on its n-th call (mid-step)."""

    def __init__(self, at: int | None) -> None:
        self.at, self.calls = at, 0

    def __call__(self, model, batch, state):
        self.calls += 1
        if self.at is not None and self.calls == self.at:
            raise KeyboardInterrupt
        return lm_loss(model, batch, state)


def _fit_with_dropout(run_dir, loss_fn, data, ids, cfg, resume):
    """A TinyLM with dropout (so the RNG state must survive a resume), validated on ids[1300:]."""
    torch.manual_seed(0)
    model = TinyLM(dropout=0.2)
    trainer = Trainer(
        model,
        loss_fn,
        data,
        val_data=StreamBatches(ids[1300:], 2, 10),
        config=cfg,
        run_dir=run_dir,
        resume=resume,
    )
    return trainer.fit(), model


@pytest.mark.parametrize("mode", ["tbptt", "random"])
def test_resume_reproduces_uninterrupted_run(tmp_path, mode):
    ids = _stream(1500)

    def run(run_dir, loss_fn, resume=False):
        if mode == "tbptt":
            data = StreamBatches(ids[:1300], 4, 10)  # 32 chunks per epoch
        else:
            data = RandomWindows(ids[:1300], 4, 10, batches_per_epoch=6, seed=5)
        cfg = _cfg(
            max_steps=20, grad_accum_steps=2, checkpoint_interval=5, carry_state=mode == "tbptt"
        )
        return _fit_with_dropout(run_dir, loss_fn, data, ids, cfg, resume)

    full, full_model = run(tmp_path / "a", lm_loss)
    # Interrupt in the middle of step 14 (second micro-batch); evaluations at steps
    # 4, 8, 12 also call the loss function (once per validation batch).
    n_val = len(StreamBatches(ids[1300:], 2, 10))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", _Interrupt(at=2 * 13 + 2 + 3 * n_val))
    state = json.loads((tmp_path / "b" / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 13
    resumed, resumed_model = run(tmp_path / "b", lm_loss, resume=True)
    assert resumed.losses == full.losses[13:]  # exactly, not approximately
    for pa, pb in zip(full_model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    curve_a = [r["loss"] for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if "loss" in r]
    curve_b = [r["loss"] for r in read_metrics(tmp_path / "b" / "metrics.jsonl") if "loss" in r]
    assert curve_a == curve_b


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
    calls = {"n": 0}

    def exploding(model, batch, state):
        calls["n"] += 1
        res = lm_loss(model, batch, state)
        if calls["n"] == 7:
            return StepResult(res.loss * float("nan"), res.state, res.num_tokens)
        return res

    cfg = _cfg(max_steps=20, eval_interval=0, checkpoint_interval=3)
    with pytest.raises(TrainingDiverged) as info:
        Trainer(
            TinyLM(), exploding, StreamBatches(_stream(600), 4, 10), config=cfg, run_dir=tmp_path
        ).fit()
    msg = str(info.value)
    assert "nan at step 7" in msg and "train.lr" in msg and "grad_clip" in msg
    assert str(tmp_path / "checkpoint") in msg
    state = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 6


def test_early_stopping_on_validation_metric(tmp_path):
    values = iter([3.0, 2.0, 2.5, 2.4, 2.6, 1.0])

    cfg = _cfg(max_steps=100, eval_interval=2, early_stopping_patience=3, eval_metric="score")
    res = Trainer(
        TinyLM(),
        lm_loss,
        StreamBatches(_stream(600), 4, 10),
        config=cfg,
        evaluate=lambda m: {"score": next(values)},
        run_dir=tmp_path,
    ).fit()
    assert res.stop_reason == "early_stopping"
    assert res.step == 10  # evals at 2, 4 (best), 6, 8, 10 -> three without improvement
    assert res.best_metric == 2.0
    assert json.loads((tmp_path / "best" / "best.json").read_text()) == {"step": 4, "score": 2.0}
    # Higher is better (accuracy): 3.0 at step 2 stays best; three evals later it stops.
    values = iter([3.0, 2.0, 2.5, 2.4, 2.6, 1.0])
    cfg = _cfg(
        max_steps=100,
        eval_interval=2,
        early_stopping_patience=3,
        eval_metric="acc",
        eval_mode="max",
    )
    res = Trainer(
        TinyLM(),
        lm_loss,
        StreamBatches(_stream(600), 4, 10),
        config=cfg,
        evaluate=lambda m: {"acc": next(values)},
    ).fit()
    assert (res.step, res.best_metric, res.stop_reason) == (8, 3.0, "early_stopping")


def test_wall_clock_budget_stops_and_evaluates_the_last_step(monkeypatch):
    # A fake clock that only the loss function advances (0.1 s per step): the
    # budget check is then exact, whatever the machine's speed.
    from rnnkit.training import loop

    clock = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: clock[0])

    def slow(model, batch, state):
        clock[0] += 0.1
        return lm_loss(model, batch, state)

    cfg = _cfg(max_steps=10_000, max_seconds=0.35, eval_interval=1000)
    res = Trainer(
        TinyLM(),
        slow,
        StreamBatches(_stream(600), 4, 10),
        config=cfg,
        evaluate=lambda m: {"val_loss": 1.0},
    ).fit()
    assert res.stop_reason == "max_seconds" and res.step == 4  # 0.4 s >= 0.35 s
    assert res.evals[-1]["step"] == res.step


def test_a_time_budget_plans_the_schedule_to_end_at_the_budget(monkeypatch, tmp_path):
    """With max_seconds the cosine decay ends when time runs out, not at a max_steps
    that is never reached (fake clock: 0.1 s per step, so 30 steps fit in 3 s)."""
    from rnnkit.training import loop

    clock = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: clock[0])

    def slow(model, batch, state):
        clock[0] += 0.1
        return lm_loss(model, batch, state)

    cfg = _cfg(max_steps=10_000, max_seconds=3.0, eval_interval=0, warmup_steps=2, min_lr=1e-4)
    res = Trainer(
        TinyLM(), slow, StreamBatches(_stream(600), 4, 10), config=cfg, run_dir=tmp_path
    ).fit()
    lrs = [r["lr"] for r in read_metrics(tmp_path / "metrics.jsonl") if "lr" in r]
    assert res.stop_reason == "max_seconds" and 28 <= res.step <= 31
    assert lrs[-1] < 0.05 * cfg.lr  # decayed to (near) min_lr by the end of the budget
    assert all(b <= a + 1e-12 for a, b in zip(lrs[2:], lrs[3:], strict=False))  # monotone decay
    # Without a budget the same 30 steps of a 10,000-step schedule stay near the peak.
    assert loop.lr_at(30, cfg) > 0.99 * cfg.lr


def test_progress_under_a_time_budget_shows_the_planned_steps_and_time_left(monkeypatch, capsys):
    """With max_seconds the progress lines count toward the steps the budget will
    reach and the ETA is bounded by the time left, not by an unreachable max_steps
    (fake clock: 0.1 s per step, 3 s budget, so about 30 steps)."""
    from rnnkit.training import loop

    clock = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: clock[0])

    def slow(model, batch, state):
        clock[0] += 0.1
        return lm_loss(model, batch, state)

    cfg = _cfg(max_steps=10_000, max_seconds=3.0, eval_interval=0, progress="lines", log_interval=5)
    Trainer(TinyLM(), slow, StreamBatches(_stream(600), 4, 10), config=cfg).fit()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("step ")]
    totals = [int(ln.split("|")[0].split("/")[1]) for ln in lines]
    etas = [ln.rsplit("eta ", 1)[1] for ln in lines]
    assert len(lines) >= 5 and all(28 <= t <= 32 for t in totals[1:]), lines
    assert all(e.startswith("00:0") for e in etas), etas  # under 10 s, never hours


def test_progress_eta_never_exceeds_the_budget_left(monkeypatch):
    from rnnkit.training import progress

    clock = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    out = io.StringIO()
    p = Progress(1_000_000, mode="lines", log_interval=1, stream=out, max_seconds=60.0)
    clock[0] = 10.0  # one step in 10 s: a million steps would take 116 days
    p.update(1, loss=1.0, tokens_per_s=1.0)
    assert out.getvalue().strip().endswith("eta 00:50"), out.getvalue()


def test_checkpoint_is_safetensors_and_json_and_survives_interrupted_replace(tmp_path):
    cfg = _cfg(max_steps=4, eval_interval=0)
    Trainer(
        TinyLM(),
        lm_loss,
        StreamBatches(_stream(600), 4, 10),
        config=cfg,
        run_dir=tmp_path,
        save_config={"hello": 1},
        extra_json={"vocab.json": {"chars": ["a"]}},
    ).fit()
    d = tmp_path / "checkpoint"
    assert sorted(os.listdir(d)) == sorted(
        [
            "config.json",
            "model.safetensors",
            "optimizer.safetensors",
            "rng.safetensors",
            "carry.safetensors",
            "trainer_state.json",
            "vocab.json",
            "manifest.json",
        ]
    )
    assert json.loads((d / "config.json").read_text()) == {"hello": 1}
    assert "embed.weight" in load_file(d / "model.safetensors")
    assert any(k.endswith("exp_avg") for k in load_file(d / "optimizer.safetensors"))
    # A crash between "move old away" and "move new in" leaves only checkpoint.old.
    os.replace(d, tmp_path / "checkpoint.old")
    assert resolve_checkpoint(tmp_path).name == "checkpoint.old"
    shutil.rmtree(tmp_path / "checkpoint.old")
    with pytest.raises(UserError, match="does not exist"):
        resolve_checkpoint(tmp_path / "checkpoint")


class _SharedStorage(nn.Module):
    """Both kinds of shared storage: a tied weight, and views into one flat buffer
    (what cuDNN's flatten_parameters makes of every recurrent weight on CUDA)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight  # tied
        flat = torch.randn(14)
        self.w = nn.Parameter(flat[:12].view(3, 4))  # views of one buffer, none covering it
        self.b = nn.Parameter(flat[12:])


def test_checkpoint_stores_tied_weights_once_and_views_of_one_buffer(tmp_path):
    from rnnkit.training.checkpoint import load_model_weights, write_checkpoint

    torch.manual_seed(0)
    src = _SharedStorage()
    write_checkpoint(tmp_path / "ck", model=src)
    stored = load_file(tmp_path / "ck" / "model.safetensors")
    assert set(stored) == {"embed.weight", "w", "b"}  # out.weight is embed.weight
    dst = _SharedStorage()
    load_model_weights(dst, tmp_path / "ck")
    for name, t in src.state_dict().items():
        assert torch.equal(dst.state_dict()[name], t), name
    assert dst.out.weight is dst.embed.weight  # still tied after loading


def test_missing_checkpoint_files_give_clear_error(tmp_path):
    cfg = _cfg(max_steps=2, eval_interval=0)
    Trainer(
        TinyLM(), lm_loss, StreamBatches(_stream(600), 4, 10), config=cfg, run_dir=tmp_path
    ).fit()
    (tmp_path / "checkpoint" / "optimizer.safetensors").unlink()
    with pytest.raises(UserError, match="damaged: .*optimizer.safetensors is missing"):
        Trainer(
            TinyLM(),
            lm_loss,
            StreamBatches(_stream(600), 4, 10),
            config=cfg,
            run_dir=tmp_path,
            resume=True,
        ).fit()


def test_progress_prints_plain_lines_when_not_a_tty():
    out = io.StringIO()
    p = Progress(20, mode="auto", log_interval=5, stream=out)
    assert p.mode == "lines"
    for s in range(1, 21):
        p.update(s, loss=1.0 / s, tokens_per_s=1234.0)
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("step 20/20 | loss 0.0500") and "1,234 tok/s" in lines[-1]
    assert "eta" in lines[0]


def test_progress_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    p = Progress(10, mode="auto", stream=out)
    assert p.mode == "bar"
    for s in range(1, 11):
        p.update(s, loss=0.5, tokens_per_s=2000.0)
    p.close()
    text = out.getvalue()
    assert "10/10" in text and "loss=0.5000" in text and "tok_s=2,000" in text


def test_reset_state_rows_zeroes_only_marked_rows():
    h = torch.ones(2, 3, 4)  # (L, B, H)
    c = torch.full((2, 3, 4), 2.0)
    out = reset_state_rows((h, c), torch.tensor([False, True, False]))
    assert out[0][:, 1].abs().sum() == 0 and out[1][:, 1].abs().sum() == 0
    assert torch.equal(out[0][:, 0], h[:, 0]) and torch.equal(out[1][:, 2], c[:, 2])
    assert reset_state_rows(h, torch.tensor([True, True, True])) is None


def test_bad_config_values_are_rejected():
    with pytest.raises(UserError, match="train.optimizer must be adamw or sgd"):
        Trainer(TinyLM(), lm_loss, [], config=TrainConfig(optimizer="adam"))
    with pytest.raises(UserError, match="produced no batches"):
        Trainer(TinyLM(), lm_loss, [], config=_cfg()).fit()


# --------------------------------------------------------------------------
# CUDA (run with -m gpu on a GPU machine)
# --------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_resumes_and_checkpoint_loads_on_cpu(tmp_path):
    """device="cuda": the loss falls, an interrupted run resumes to the same losses,
    and the saved weights load into a CPU model."""
    ids = _stream(1500)

    def run(run_dir, loss_fn, resume=False):
        cfg = _cfg(max_steps=20, checkpoint_interval=5, carry_state=True, device="cuda")
        return _fit_with_dropout(
            run_dir, loss_fn, StreamBatches(ids[:1300], 4, 10), ids, cfg, resume
        )

    full, full_model = run(tmp_path / "a", lm_loss)
    assert next(full_model.parameters()).is_cuda
    assert sum(full.losses[-5:]) < sum(full.losses[:5])
    n_val = len(StreamBatches(ids[1300:], 2, 10))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", _Interrupt(at=13 + 3 * n_val))  # in step 13
    resumed, resumed_model = run(tmp_path / "b", lm_loss, resume=True)
    # cuDNN's GRU is deterministic for a fixed configuration; allow float noise anyway.
    assert resumed.losses == pytest.approx(full.losses[12:], rel=1e-5)
    cpu_model = TinyLM()
    cpu_model.load_state_dict(load_file(str(tmp_path / "b" / "checkpoint" / "model.safetensors")))
    for pa, pb in zip(cpu_model.parameters(), resumed_model.parameters(), strict=True):
        assert not pa.is_cuda
        torch.testing.assert_close(pa, pb.detach().cpu())


def test_checkpoints_record_who_loads_them_and_best_its_metrics(tmp_path):
    from rnnkit.training import read_manifest

    cfg = _cfg(max_steps=4, eval_interval=2)
    Trainer(
        TinyLM(),
        lm_loss,
        StreamBatches(_stream(600), 4, 10),
        config=cfg,
        evaluate=lambda m: {"val_loss": 1.0},
        run_dir=tmp_path,
        meta={"app": "textgen", "estimator": "TextGenerator"},
    ).fit()
    best, last = read_manifest(tmp_path / "best"), read_manifest(tmp_path / "checkpoint")
    assert best["app"] == last["app"] == "textgen" and best["estimator"] == "TextGenerator"
    assert best["metrics"] == {"step": 2, "val_loss": 1.0}


@pytest.mark.parametrize(
    "key", ["lr", "min_lr", "grad_clip", "weight_decay", "beta2", "max_seconds"]
)
def test_non_finite_hyper_parameters_are_one_line_errors(key):
    with pytest.raises(UserError, match=f"train.{key} must be a finite number, got nan"):
        _cfg(**{key: float("nan")}).validate()
