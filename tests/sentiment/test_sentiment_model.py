"""The text classifier network: torch.nn oracles, padding invariance, dropout, the losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.errors import UserError
from rnnkit.sentiment.config import POOLINGS, TextClassifierConfig
from rnnkit.sentiment.data import ClsBatch
from rnnkit.sentiment.model import TextClassifier, load_word_vectors
from rnnkit.sentiment.train import make_loss


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
    cfg = TextClassifierConfig(vocab_size=5, num_classes=2, embed_dim=3, hidden_size=2)
    model = TextClassifier(cfg)
    before = model.embed.weight.detach().clone()
    model.set_pretrained(vectors, found)
    assert torch.equal(model.embed.weight[2:4].detach(), vectors[2:4])
    assert torch.equal(model.embed.weight[4].detach(), before[4])  # no vector: its own init


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
