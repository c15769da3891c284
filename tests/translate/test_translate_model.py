"""Seq2Seq with attention on synthetic tasks; greedy and beam search against oracles."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from rnnkit.errors import UserError
from rnnkit.training import load_model_weights, write_checkpoint
from rnnkit.translate.data import make_batch
from rnnkit.translate.model import Seq2Seq, Seq2SeqConfig
from rnnkit.translate.search import beam_search, greedy_search, max_lengths


@pytest.fixture(autouse=True)
def _one_thread():
    # The machine is shared: one intra-op thread is several times faster than many here.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _reverse_data(rng: random.Random, n: int) -> tuple[list[list[int]], list[list[int]]]:
    xs = [[rng.randrange(2, 10) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    return xs, [x[::-1] for x in xs]


# Additive attention also learns the (GRU) number-word task in the default suite
# (tests/translate/test_translate.py); here the LSTM + additive variant is slow-marked.
@pytest.mark.parametrize(
    ("attention", "cell"),
    [("multiplicative", "gru"), pytest.param("additive", "lstm", marks=pytest.mark.slow)],
)
def test_learns_to_reverse_digits_and_searches_agree(attention: str, cell: str) -> None:
    torch.manual_seed(0)
    rng = random.Random(0)
    cfg = Seq2SeqConfig(
        src_vocab_size=10,
        tgt_vocab_size=12,
        cell=cell,
        embed_dim=16,
        hidden_size=32,
        attention=attention,
        dropout=0.0,
    )
    model = Seq2Seq(cfg)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(220):
        xs, ys = _reverse_data(rng, 32)
        b = make_batch(xs, ys, range(32), model.bos_id, model.eos_id)
        loss = model.loss(b.src, b.src_len, b.tgt_in, b.tgt_out)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xs, ys = _reverse_data(random.Random(1), 100)  # fresh sequences
    b = make_batch(xs, None, range(100), model.bos_id, model.eos_id)
    limit = max_lengths(b.src_len, 2.0)
    greedy = greedy_search(model, b.src, b.src_len, limit)
    exact = sum(g == y for g, y in zip(greedy, ys, strict=True)) / len(ys)
    assert exact >= 0.85, exact
    # beam size 1 is greedy search (two separate implementations)
    assert beam_search(model, b.src, b.src_len, limit, beam=1) == greedy
    # batched beam search equals one sentence at a time
    batched = beam_search(model, b.src[:12], b.src_len[:12], limit[:12], beam=3)
    for i in range(12):
        n = int(b.src_len[i])
        alone = beam_search(
            model, b.src[i : i + 1, :n], b.src_len[i : i + 1], limit[i : i + 1], beam=3
        )
        assert alone[0] == batched[i]
    beam = beam_search(model, b.src, b.src_len, limit, beam=4)
    assert sum(h == y for h, y in zip(beam, ys, strict=True)) / len(ys) >= 0.85


def _sequence_logprob(model: Seq2Seq, src: torch.Tensor, hyp: list[int]) -> float:
    tgt_in = torch.tensor([[model.bos_id, *hyp]])
    out = model(src, torch.tensor([src.size(1)]), tgt_in)
    logp = torch.log_softmax(out.logits[0].double(), dim=-1)  # (T, V)
    return float(sum(logp[t, y] for t, y in enumerate([*hyp, model.eos_id])))


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_wide_beam_equals_exhaustive_search(alpha: float) -> None:
    """With a beam wider than the number of hypotheses, beam search is exact: it finds
    the hypothesis with the best score / (tokens + EOS) ** alpha."""
    torch.manual_seed(3)
    cfg = Seq2SeqConfig(src_vocab_size=6, tgt_vocab_size=5, embed_dim=8, hidden_size=8, dropout=0.0)
    model = Seq2Seq(cfg).eval()
    src = torch.tensor([[2, 3, 4]])
    limit = torch.tensor([2])  # at most 2 tokens, then EOS is forced
    tokens = [t for t in range(5) if t != model.eos_id]
    hyps = [list(h) for n in range(3) for h in itertools.product(tokens, repeat=n)]
    with torch.no_grad():
        best = max(hyps, key=lambda h: _sequence_logprob(model, src, h) / (len(h) + 1) ** alpha)
    found = beam_search(model, src, torch.tensor([3]), limit, beam=len(hyps) + 1, alpha=alpha)
    assert found == [best]
    if alpha == 1.0:  # the case tells the formulas apart: unnormalised, or EOS not counted
        with torch.no_grad():
            logp = {tuple(h): _sequence_logprob(model, src, h) for h in hyps}
        assert best != list(max(logp, key=logp.__getitem__))
        assert best != list(max(logp, key=lambda h: logp[h] / max(1, len(h))))


def test_forward_is_the_step_loop_and_padding_is_ignored() -> None:
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(
        src_vocab_size=9,
        tgt_vocab_size=9,
        cell="lstm",
        embed_dim=8,
        hidden_size=8,
        num_layers=2,
        dropout=0.0,
    )
    model = Seq2Seq(cfg).eval()
    b = make_batch(
        [[2, 3, 4, 5], [6, 7]], [[2, 3], [4, 5, 6]], range(2), model.bos_id, model.eos_id
    )
    out = model(b.src, b.src_len, b.tgt_in)
    memory, state = model.encode(b.src, b.src_len)
    for t in range(b.tgt_in.size(1)):  # forward() is step() T times
        logits, state, w = model.step(b.tgt_in[:, t], state, memory)
        torch.testing.assert_close(logits, out.logits[:, t])
        torch.testing.assert_close(w, out.attention[:, t])
    alone = model(b.src[1:, :2], b.src_len[1:], b.tgt_in[1:])
    torch.testing.assert_close(out.logits[1:], alone.logits, atol=1e-5, rtol=1e-5)
    assert bool((out.attention[1, :, 2:] == 0).all())  # padded source gets no attention
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, 4))


def test_tied_embeddings_and_config_errors(tmp_path) -> None:
    model = Seq2Seq(
        Seq2SeqConfig(
            src_vocab_size=5, tgt_vocab_size=6, embed_dim=8, hidden_size=8, tie_embeddings=True
        )
    )
    assert model.out.weight is model.tgt_embed.weight
    write_checkpoint(tmp_path / "tied", model=model, config={})
    again = Seq2Seq(model.config)
    load_model_weights(again, tmp_path / "tied")
    assert again.out.weight is again.tgt_embed.weight
    torch.testing.assert_close(again.out.weight, model.tgt_embed.weight)
    with pytest.raises(UserError, match="tie_embeddings needs model.embed_dim == model.hidden"):
        Seq2Seq(
            Seq2SeqConfig(
                src_vocab_size=5, tgt_vocab_size=6, embed_dim=4, hidden_size=8, tie_embeddings=True
            )
        )
    with pytest.raises(UserError, match="model.attention must be one of additive"):
        Seq2Seq(Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=6, attention="dot"))
    with pytest.raises(UserError, match="model.cell must be gru or lstm"):
        Seq2Seq(Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=6, cell="rnn"))


@torch.no_grad()
def test_scheduled_sampling_feeds_own_predictions() -> None:
    torch.manual_seed(0)
    model = Seq2Seq(
        Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, embed_dim=8, hidden_size=8, dropout=0.0)
    )
    b = make_batch([[2, 3, 4]], [[2, 3, 4, 5]], range(1), model.bos_id, model.eos_id)
    forced = model(b.src, b.src_len, b.tgt_in).logits
    own = model(b.src, b.src_len, b.tgt_in, sampling_ratio=1.0).logits
    # ratio 1: the input at step t is the argmax of step t-1: the greedy decode
    greedy_in = torch.cat([b.tgt_in[:, :1], own[:, :-1].argmax(-1)], dim=1)
    torch.testing.assert_close(own, model(b.src, b.src_len, greedy_in).logits)
    assert not torch.equal(greedy_in, b.tgt_in)  # an untrained model errs: the inputs differ
    assert not torch.allclose(forced, own)
