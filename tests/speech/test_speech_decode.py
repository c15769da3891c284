"""CTC decoding against hand-worked and brute-force oracles; the CTC loss and model checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from speech_clips import labeling_totals

from rnnkit.errors import UserError
from rnnkit.speech import CTCASRConfig
from rnnkit.speech.batches import ctc_min_frames
from rnnkit.speech.decode import CharNgramLM, greedy_decode, prefix_beam_search, word_times
from rnnkit.speech.model import CTCASR, CTCOutput, ctc_loss


def _onehot_log_probs(path: list[int], V: int) -> torch.Tensor:
    lp = torch.full((len(path), V), math.log(0.01))
    lp[torch.arange(len(path)), torch.tensor(path)] = math.log(1 - 0.01 * (V - 1))
    return lp


def test_greedy_collapses_repeats_and_removes_blanks() -> None:
    # frames: a a - a b b -   ->  a a b, first emitted at frames 0, 3, 4
    dec = greedy_decode(_onehot_log_probs([1, 1, 0, 1, 2, 2, 0], 3))
    assert dec.labels == [1, 1, 2]
    assert dec.frames == [0, 3, 4]
    assert greedy_decode(_onehot_log_probs([0, 0, 0], 3)).labels == []
    assert greedy_decode(_onehot_log_probs([2, 2, 2, 2], 3)).labels == [2]


def test_beam_beats_greedy_on_the_hand_worked_example() -> None:
    # Two frames, P(blank) = 0.6, P(a) = 0.4 each. Best path: "-" "-" -> "" (0.36).
    # P("a") = 0.4*0.6 + 0.6*0.4 + 0.4*0.4 = 0.64 > P("") = 0.36.
    lp = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()
    assert greedy_decode(lp).labels == []
    dec = prefix_beam_search(lp, beam=4)
    assert dec.labels == [1]
    assert math.exp(dec.log_prob) == pytest.approx(0.64, abs=1e-6)


def _brute_force_best(lp: np.ndarray) -> tuple[tuple[int, ...], float]:
    """Sum the probability of every alignment into its labeling; return the best one."""
    totals = labeling_totals(lp)
    best = max(totals, key=totals.__getitem__)
    return best, totals[best]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_wide_beam_equals_brute_force_and_torch_ctc(seed) -> None:
    g = torch.Generator().manual_seed(seed)
    lp = torch.log_softmax(torch.randn(5, 3, generator=g) * 1.5, -1).double()
    best, prob = _brute_force_best(lp.numpy())
    dec = prefix_beam_search(lp, beam=200)
    assert tuple(dec.labels) == best
    assert math.exp(dec.log_prob) == pytest.approx(prob, rel=1e-9)
    if best:  # torch's CTC forward algorithm gives the same labeling probability
        nll = F.ctc_loss(
            lp[:, None],
            torch.tensor([best]),
            torch.tensor([5]),
            torch.tensor([len(best)]),
            reduction="sum",
        )
        assert math.exp(-float(nll)) == pytest.approx(prob, rel=1e-9)


def test_char_ngram_lm_probabilities_and_beam_rescoring() -> None:
    lm = CharNgramLM(order=2, k=0.01).fit(["ab", "ab", "ab", "ba"])
    for history in ("", "a", "b", "zz"):
        total = sum(math.exp(lm.log_prob(history, c)) for c in lm.chars_)
        total += math.exp(lm.log_prob(history, None))
        assert total == pytest.approx(1.0, abs=1e-12)
    # counts after "a": b three times (and end once): P(b|a) = (3 + k) / (4 + 3k)
    assert math.exp(lm.log_prob("a", "b")) == pytest.approx(3.01 / 4.03)
    assert CharNgramLM.from_dict(json.loads(json.dumps(lm.to_dict()))).log_prob("a", "b") == (
        lm.log_prob("a", "b")
    )
    # Acoustics prefer "aa" (labels a=1, b=2: 0.5 * 0.5 > 0.5 * 0.4); the LM has never seen
    # "a" follow "a" (P = 0.01 / 4.03) and tips the search to "ab".
    lp = torch.tensor(
        [[0.9, 0.05, 0.05], [0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.1, 0.5, 0.4], [0.9, 0.05, 0.05]]
    ).log()
    chars = ["a", "b"]
    assert prefix_beam_search(lp, 8).labels == [1, 1]
    assert prefix_beam_search(lp, 8, lm=lm, chars=chars, lm_weight=1.0).labels == [1, 2]


def test_word_times_from_emission_frames() -> None:
    chars = [" ", "a", "b"]  # labels 1, 2, 3
    # "ab ba": a@2 b@3 space@6 b@8 a@10, 20 ms frames
    words = word_times([2, 3, 1, 3, 2], [2, 3, 6, 8, 10], chars, 0.02)
    assert [w.word for w in words] == ["ab", "ba"]
    assert words[0].start == pytest.approx(0.04) and words[0].end == pytest.approx(0.08)
    assert words[1].start == pytest.approx(0.16) and words[1].end == pytest.approx(0.22)


def test_ctc_loss_checks_lengths_instead_of_nan() -> None:
    assert ctc_min_frames([1, 1, 2]) == 4  # a blank must separate the repeat
    lp = torch.log_softmax(torch.randn(1, 3, 4), -1)
    out = CTCOutput(lp, torch.tensor([3]), None)
    with pytest.raises(UserError, match="fewer frames than their transcript needs"):
        ctc_loss(out, torch.tensor([[1, 1, 2]]), torch.tensor([3]))
    ok = ctc_loss(out, torch.tensor([[1, 2, 3]]), torch.tensor([3]))
    expect = F.ctc_loss(
        lp.transpose(0, 1), torch.tensor([[1, 2, 3]]), torch.tensor([3]), torch.tensor([3])
    )
    torch.testing.assert_close(ok, expect)


def test_model_config_errors() -> None:
    with pytest.raises(UserError, match="model.cell must be one of"):
        CTCASR(CTCASRConfig(input_size=4, vocab_size=3, cell="transformer"))
    with pytest.raises(UserError, match="subsample needs the front end"):
        CTCASR(CTCASRConfig(input_size=4, vocab_size=3, conv_channels=0, subsample=2))
