"""Text generation: data, model, sampling, the TBPTT memory property, CLI end to end."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rnnkit import TextGenerator
from rnnkit.cli import main as cli_main
from rnnkit.errors import UserError
from rnnkit.textgen.data import (
    CharVocab,
    RandomWindows,
    StreamBatches,
    encode_texts,
    load_text,
    split_by_position,
)
from rnnkit.textgen.model import CharLM, CharLMConfig, sample_next
from rnnkit.training import StepResult, TrainConfig, Trainer

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 12


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: thread hand-offs cost more than they bring on a shared 2-core box.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


# --------------------------------------------------------------------------- data


def test_tinyshakespeare_downloads_through_fetch_with_checksum(data_mirror):
    text = load_text("tinyshakespeare")
    assert len(text) == 1115394
    assert text.startswith("First Citizen:")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert digest == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    assert len(CharVocab().fit(text)) == 65  # as the dataset's README says


def test_vocab_roundtrip_and_unknown_characters():
    vocab = CharVocab().fit("hello world")
    assert vocab.chars_ == sorted(set("hello world"))
    ids = vocab.encode("world hello")
    assert ids.dtype == torch.long and vocab.decode(ids) == "world hello"
    again = CharVocab.from_dict(vocab.to_dict())
    assert again.chars_ == vocab.chars_
    with pytest.raises(UserError, match=r"2 character\(s\) the model never saw.*'Z', 'é'"):
        vocab.encode("hello Zé")


def test_split_is_by_position_last_ten_percent():
    ids = torch.arange(1000)
    train, val = split_by_position(ids)
    assert torch.equal(train, torch.arange(900)) and torch.equal(val, torch.arange(900, 1000))
    with pytest.raises(UserError, match="too short"):
        split_by_position(torch.arange(5))


def test_stream_batches_continue_row_by_row_and_split_by_rank():
    ids = torch.arange(1001)
    full = list(StreamBatches(ids, 4, 10))
    assert len(full) == 25  # 1000 // 4 = 250 columns per row, 10 per chunk
    for j in range(len(full) - 1):
        assert torch.equal(full[j + 1].x[:, 0], full[j].x[:, -1] + 1)  # contiguous rows
    assert torch.equal(full[0].y, full[0].x + 1)  # y is x shifted by one character
    assert bool(full[0].reset.all()) and not bool(full[1].reset.any())
    r1 = list(StreamBatches(ids, 2, 10, rank=1, world_size=2))
    assert torch.equal(r1[3].x, full[3].x[2:])
    assert torch.equal(list(StreamBatches(ids, 4, 10).iter_from(5))[0].x, full[5].x)


def test_random_windows_are_reproducible_per_epoch():
    ids = torch.arange(500)
    w = RandomWindows(ids, 3, 7, batches_per_epoch=2, seed=1)
    a = [b.x for b in w]
    assert [torch.equal(x, y) for x, y in zip(a, [b.x for b in w], strict=True)] == [True, True]
    w.set_epoch(1)
    assert not torch.equal(a[0], next(iter(w)).x)
    assert torch.equal(a[0][:, 1:], a[0][:, :-1] + 1)  # windows are contiguous text


# --------------------------------------------------------------------------- model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_step_gives_the_same_next_char_distribution_as_full_forward(cell):
    torch.manual_seed(0)
    model = CharLM(
        CharLMConfig(vocab_size=11, cell=cell, num_layers=2, hidden_size=12, embed_dim=6)
    ).eval()
    x = torch.randint(0, 11, (3, 9))
    full = model(x).logits.log_softmax(-1)  # (3, 9, 11)
    state, stepped = None, []
    for t in range(9):
        out = model.step(x[:, t], state)
        state = out.state
        stepped.append(out.logits.log_softmax(-1))
    torch.testing.assert_close(torch.stack(stepped, 1), full, rtol=1e-5, atol=1e-6)


def test_char_lm_matches_torch_nn_lstm_with_copied_weights():
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=9, num_layers=2, hidden_size=10, embed_dim=5))
    ref = torch.nn.LSTM(5, 10, num_layers=2, batch_first=True)
    ref.load_state_dict(model.rnn.state_dict())
    x = torch.randint(0, 9, (2, 7))
    h, _ = ref(model.embed.weight[x])
    expected = h @ model.head.weight.T + model.head.bias
    torch.testing.assert_close(model(x).logits, expected, rtol=1e-5, atol=1e-6)


def test_tied_embeddings_share_one_matrix_and_need_equal_sizes():
    m = CharLM(CharLMConfig(vocab_size=9, hidden_size=8, embed_dim=8, tie_embeddings=True))
    assert m.head.weight is m.embed.weight
    with pytest.raises(UserError, match="embed_dim == model.hidden_size"):
        CharLM(CharLMConfig(vocab_size=9, hidden_size=8, embed_dim=4, tie_embeddings=True))


def _greedy_by_recomputing(model: CharLM, prompt: torch.Tensor, n: int) -> list[int]:
    """Naive twin of generation: rerun the whole prefix for every new character."""
    seq = prompt.tolist()
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([seq])).logits[0, -1]
            seq.append(int(logits.argmax()))
    return seq[len(prompt) :]


def test_top_k_one_equals_greedy_and_seeded_sampling_is_reproducible():
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=13, num_layers=2, hidden_size=16, embed_dim=8))
    prompt = torch.tensor([1, 2, 3])
    greedy = _greedy_by_recomputing(model, prompt, 30)
    assert list(model.generate(prompt, 30, top_k=1)) == greedy
    assert list(model.generate(prompt, 30, temperature=0.0)) == greedy

    def sample(seed):
        g = torch.Generator().manual_seed(seed)
        return list(model.generate(prompt, 40, temperature=1.5, top_p=0.9, generator=g))

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_sample_next_respects_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)  # (2000, 4)
    g = torch.Generator().manual_seed(0)
    k2 = sample_next(logits, top_k=2, generator=g)
    assert set(k2.tolist()) == {0, 1}
    # top_p=0.7: {0.5, 0.3} reaches 0.8 >= 0.7; the 0.15 and 0.05 ids are cut.
    p = sample_next(logits, top_p=0.7, generator=g)
    assert set(p.tolist()) == {0, 1}
    assert abs((p == 0).float().mean().item() - 0.5 / 0.8) < 0.05  # renormalised
    with pytest.raises(UserError, match="top_p must be in"):
        sample_next(logits, top_p=0.0)


# --------------------------------------------------------------------------- training


def _memory_stream(n_periods: int, seed: int) -> torch.Tensor:
    """Periods of 4 characters [s, ., ., s] with s in {0, 1} random: the last s can only be
    predicted by remembering the first, which sits in the previous chunk (chunks of 2)."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 2, (n_periods,), generator=g)
    per = torch.full((n_periods, 4), 2)  # (n, 4)
    per[:, 0] = s
    per[:, 3] = s
    return per.flatten()


def _lm_loss(model, batch, state):
    out = model(batch.x, state)
    return StepResult(
        F.cross_entropy(out.logits.flatten(0, 1), batch.y.flatten()), out.state, batch.y.numel()
    )


def _recall_loss(carry: bool) -> float:
    torch.manual_seed(0)
    model = CharLM(
        CharLMConfig(vocab_size=3, cell="gru", num_layers=1, hidden_size=32, embed_dim=8)
    )
    cfg = TrainConfig(
        max_steps=300,
        lr=2e-2,
        min_lr=2e-3,
        warmup_steps=10,
        eval_interval=0,
        carry_state=carry,
        progress="none",
        plot=False,
    )
    Trainer(model, _lm_loss, StreamBatches(_memory_stream(800, 1), 16, 2), config=cfg).fit()
    test = _memory_stream(64, 2).view(8, 32)  # (8 rows, 8 periods each)
    with torch.no_grad():
        logits = model(test[:, :-1]).logits  # whole rows: the state is carried throughout
    pos = torch.arange(2, 31, 4)  # inputs at period position 2 predict position 3
    return F.cross_entropy(logits[:, pos].flatten(0, 1), test[:, pos + 1].flatten()).item()


def test_tbptt_learns_to_remember_across_chunks_only_when_state_is_carried():
    chance = math.log(2)
    assert _recall_loss(carry=True) < 0.5 * chance
    assert _recall_loss(carry=False) > chance


def test_python_api_fit_load_generate_evaluate(text_file, tmp_path):
    gen = TextGenerator(
        preset="tiny",
        max_steps=60,
        eval_interval=30,
        batch_size=8,
        seq_len=32,
        hidden_size=64,
        progress="none",
        plot=False,
        source=str(text_file),
    )
    assert gen.fit(run_dir=tmp_path / "run") is gen
    result = gen.result_
    assert result.step == 60
    assert sum(result.losses[-5:]) / 5 < sum(result.losses[:5]) / 5 - 0.5  # loss falls
    gen = TextGenerator.load(tmp_path / "run")
    out = gen.generate("First", 50, temperature=0.8, top_k=5, seed=3)
    assert out.startswith("First") and len(out) == 55
    assert out == gen.generate("First", 50, temperature=0.8, top_k=5, seed=3)
    m = gen.evaluate(TEXT)
    assert m["bits_per_char"] == pytest.approx(m["loss"] / math.log(2))
    assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
    assert m["loss"] < math.log(len(gen.vocab_))  # better than uniform


def test_encode_texts_adds_characters_seen_only_in_validation():
    vocab, train, val = encode_texts("abcabcabc", "abcz")
    assert vocab.chars_ == ["a", "b", "c", "z"] and len(train) == 9 and len(val) == 4
    vocab, train, val = encode_texts("ab" * 50 + "q" * 10, val_fraction=0.1)
    assert "q" in vocab.chars_ and len(val) == 11


# --------------------------------------------------------------------------- CLI


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli_main(list(argv))
    except SystemExit as exc:  # argparse errors exit directly
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_train_sample_eval_resume_end_to_end(text_file, tmp_path, capsys):
    run = str(tmp_path / "run")
    common = [
        "--data",
        str(text_file),
        "--run-dir",
        run,
        "--preset",
        "tiny",
        "--data.batch_size=8",
        "--data.seq_len=16",
        "--model.hidden_size=32",
        "--train.eval_interval=10",
        "--train.checkpoint_interval=10",
        "--train.progress=lines",
        "--train.plot=false",
        "--train.log_interval=5",
    ]
    code, out, err = _cli(capsys, "textgen", "train", *common, "--train.max_steps=20")
    assert code == 0, err
    assert "step 20/20" in err and "tok/s" in err and "val_loss" in out
    code, out, err = _cli(
        capsys, "textgen", "train", "--run-dir", run, "--resume", "--train.max_steps=30"
    )
    assert code == 0, err
    assert "step 30/30" in err and "step 10/" not in err  # continued, did not restart

    sample = [
        "textgen",
        "sample",
        "--checkpoint",
        run,
        "--prompt",
        "First",
        "--length",
        "40",
        "--temperature",
        "0.8",
        "--top-k",
        "40",
        "--top-p",
        "0.95",
        "--seed",
        "1",
    ]
    code, out1, err = _cli(capsys, *sample)
    assert code == 0, err
    assert out1.startswith("First") and len(out1) == len("First") + 40 + 1
    _, out2, _ = _cli(capsys, *sample)
    assert out1 == out2

    code, out, err = _cli(capsys, "textgen", "eval", "--checkpoint", run, "--data", str(text_file))
    assert code == 0, err
    assert "nats/char" in out and "bits/char" in out and "perplexity" in out


def test_cli_errors_are_one_clear_line(tmp_path, text_file, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, _, err = _cli(capsys, "textgen", "train", "--data", str(empty))
    assert (
        code == 2
        and err.strip() == f"error: {empty} is empty; pass a file with some text to learn from"
    )
    code, _, err = _cli(capsys, "textgen", "train", "--data", str(tmp_path / "nope.txt"))
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "textgen", "train", "--model.hiden_size=3")
    assert code == 2 and "did you mean --model.hidden_size" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "textgen", "train", "--model.hidden_size=big")
    assert code == 2 and err.strip() == "error: --model.hidden_size must be int, got 'big'"

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    code, _, err = _cli(capsys, "textgen", "sample", "--checkpoint", str(broken))
    assert code == 2 and "is missing model.safetensors" in err

    run = tmp_path / "run"
    TextGenerator(
        preset="tiny",
        source=str(text_file),
        max_steps=2,
        batch_size=4,
        seq_len=8,
        hidden_size=16,
        verbose=False,
        plot=False,
    ).fit(run_dir=run)
    code, out, err = _cli(
        capsys, "textgen", "sample", "--checkpoint", str(run), "--prompt", "Zebra€"
    )
    assert code == 2 and out == ""
    assert "never saw in training: 'Z', 'b', '€'" in err
