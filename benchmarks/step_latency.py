"""Per-step latency at batch 1: rnnkit ``step()`` vs the onnxruntime step graph vs torch eager.

Streaming inference runs one time step per call with the state carried, so what
matters is the latency of one small call. For each model this times, side by side
in one process (every method once per round, in a new random order each round,
after warm-up rounds; medians; :mod:`timing`):

- ``torch eager``: ``nn.LSTMCell`` / ``nn.GRUCell`` (for the text model:
  ``nn.Embedding`` + one cell per layer + ``nn.Linear``) under ``inference_mode``,
  the baseline (ratio 1.00), and the same baseline again as an **A/A row**, which
  must read 1.00 +/- 0.05 or the table says it is unreliable;
- ``rnnkit step()``: the rnnkit module's (or ``CharLM``'s) ``step()`` under
  ``inference_mode``, the same weights;
- ``onnxruntime``: the step graph written by ``rnnkit.export`` (``streaming=True``),
  run by an ``InferenceSession`` on NumPy arrays, its state fed back.

Models: one LSTM and one GRU layer with D=256, H=512, and a text model of the
shape of the ``shakespeare`` preset (2-layer LSTM 256, embedding 64, 65 characters;
untrained weights: the latency does not depend on them). Every method carries its
own state from call to call, as a stream would. torch and onnxruntime get the same
number of threads (``--threads``, default 1: the usual choice for B=1 steps).

    python benchmarks/step_latency.py                  # prints a markdown table
    python benchmarks/step_latency.py --out FILE.md    # and writes it
    python benchmarks/step_latency.py --quick          # a smoke run (small, few rounds)

Speed is never asserted in tests; this script is where it is measured. Run it on
a quiet machine: the table records the load average before and after.
"""

from __future__ import annotations

import argparse
import string
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (benchmarks/timing.py)

from rnnkit.export.onnx import export_module, session  # noqa: E402
from rnnkit.nn import GRU, LSTM  # noqa: E402

BASELINE = "torch eager"


def _ort_step(path: Path, feeds: dict[str, np.ndarray], token: bool, threads: int) -> Callable:
    """One onnxruntime call of a step graph, its state outputs fed back as inputs."""
    sess = session(path, threads=threads)
    names = [o.name for o in sess.get_outputs()]
    state = {k: v for k, v in feeds.items() if k in ("h", "c")}
    x = {k: v for k, v in feeds.items() if k not in state}

    def run() -> None:
        nonlocal state
        outs = sess.run(names, {**x, **state})
        state = {k: outs[names.index(f"{k}_n")] for k in state}

    return run


def cell_methods(kind: str, D: int, H: int, tmp: Path, threads: int) -> dict[str, Callable]:
    """One layer: torch's cell, rnnkit's step(), the onnxruntime step graph."""
    torch.manual_seed(0)
    cell = (nn.LSTMCell if kind == "lstm" else nn.GRUCell)(D, H).eval()
    ours = (LSTM if kind == "lstm" else GRU)(D, H).eval()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ours, f"{name}_l0").copy_(getattr(cell, name))
    x = torch.randn(1, D)
    lstm = kind == "lstm"
    torch_state: object = (torch.zeros(1, H), torch.zeros(1, H)) if lstm else torch.zeros(1, H)
    ours_state: object = (torch.zeros(1, 1, H), torch.zeros(1, 1, H)) if lstm else None

    def torch_eager() -> None:
        nonlocal torch_state
        with torch.inference_mode():
            torch_state = cell(x, torch_state)

    def rnnkit_step() -> None:
        nonlocal ours_state
        with torch.inference_mode():
            _, ours_state = ours.step(x, ours_state)

    path = export_module(ours, tmp / f"{kind}.onnx", streaming=True)
    feeds = {"x": x.numpy(), "h": np.zeros((1, 1, H), np.float32)}
    if lstm:
        feeds["c"] = np.zeros((1, 1, H), np.float32)
    return {
        BASELINE: torch_eager,
        "rnnkit step()": rnnkit_step,
        "onnxruntime step graph": _ort_step(path, feeds, False, threads),
    }


def textgen_methods(L: int, H: int, E: int, tmp: Path, threads: int) -> dict[str, Callable]:
    """A character LM: torch eager modules, CharLM.step(), the textgen step graph."""
    from rnnkit import TextGenerator
    from rnnkit.textgen.config import CharLMConfig
    from rnnkit.textgen.data import CharVocab
    from rnnkit.textgen.model import CharLM

    torch.manual_seed(0)
    vocab = CharVocab().fit(string.ascii_letters + " .,;:!?'-\n" + "&3")  # 65 characters
    V = len(vocab)
    lm = CharLM(CharLMConfig(vocab_size=V, cell="lstm", num_layers=L, hidden_size=H, embed_dim=E))
    lm.eval()
    est = TextGenerator(preset="shakespeare", verbose=False)
    est.model_, est.vocab_ = lm, vocab  # untrained weights: the latency is the same
    path = est.export_onnx(tmp / "textgen.onnx", streaming=True)
    # torch eager: the same weights in torch's own modules
    embed, head = nn.Embedding(V, E), nn.Linear(H, V)
    cells = [nn.LSTMCell(E if k == 0 else H, H) for k in range(L)]
    with torch.no_grad():
        embed.weight.copy_(lm.embed.weight)
        head.load_state_dict(lm.head.state_dict())
        for k, c in enumerate(cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(c, name).copy_(getattr(lm.rnn, f"{name}_l{k}"))
    token = torch.tensor([3])
    eager_state = [(torch.zeros(1, H), torch.zeros(1, H)) for _ in range(L)]
    lm_state: object = None

    def torch_eager() -> None:
        with torch.inference_mode():
            h = embed(token)
            for k, c in enumerate(cells):
                eager_state[k] = c(h, eager_state[k])
                h = eager_state[k][0]
            head(h)

    def rnnkit_step() -> None:
        nonlocal lm_state
        with torch.inference_mode():
            lm_state = lm.step(token, lm_state).state

    feeds = {"token": np.array([3], np.int64)}
    feeds |= {k: np.zeros((L, 1, H), np.float32) for k in ("h", "c")}
    return {
        BASELINE: torch_eager,
        "rnnkit step()": rnnkit_step,
        "onnxruntime step graph": _ort_step(path, feeds, True, threads),
    }


def _block(fn: Callable, n: int) -> Callable:
    """``n`` consecutive steps of one method: what streaming does (its weights stay in cache)."""

    def run() -> None:
        for _ in range(n):
            fn()

    return run


def table(title: str, times: dict[str, list[float]], block: int) -> list[str]:
    med = {k: v / block for k, v in timing.medians(times).items()}
    base = med[BASELINE]
    aa = med[BASELINE + timing.AA_SUFFIX] / base
    head = "| method | median us/step | ratio to torch eager |"
    rows = [f"### {title}", "", head, "|---|---|---|"]
    for name, t in med.items():
        rows.append(f"| {name} | {t * 1e6:.1f} | {t / base:.2f} |")
    rows += ["", f"A/A: {timing.aa_verdict(aa)} ({aa:.2f})", ""]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: small models, few rounds")
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    p.add_argument("--repeats", type=int, default=60, help="timed rounds")
    p.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    p.add_argument(
        "--block",
        type=int,
        default=100,
        help="consecutive steps of one method per timing (1: every step interleaved with "
        "the other methods, so each starts with the others' weights in the cache)",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    D, H, L, LH, E = (256, 512, 2, 256, 64) if not args.quick else (32, 64, 2, 32, 16)
    repeats, warmup = (20, 2) if args.quick else (args.repeats, args.warmup)
    block = 5 if args.quick else args.block
    import onnxruntime as ort

    load_before = timing.loadavg()
    lines = [
        "## Per-step latency at batch 1",
        "",
        f"- `{' '.join(['python', 'benchmarks/step_latency.py', *sys.argv[1:]])}`",
        f"- {repeats} rounds of {block} consecutive steps per method (random order each "
        f"round) after {warmup} warm-up rounds; median per step; onnxruntime "
        f"{ort.__version__}, {args.threads} thread(s) for torch and onnxruntime",
    ]
    body: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            f"LSTM D={D} H={H}": lambda: cell_methods("lstm", D, H, Path(tmp), args.threads),
            f"GRU D={D} H={H}": lambda: cell_methods("gru", D, H, Path(tmp), args.threads),
            f"textgen: {L}-layer LSTM {LH}, embedding {E}, 65 characters": lambda: textgen_methods(
                L, LH, E, Path(tmp), args.threads
            ),
        }
        for title, make in models.items():
            fns = {k: _block(f, block) for k, f in timing.with_aa(make(), BASELINE).items()}
            body += table(title, timing.run_rounds(fns, warmup=warmup, repeats=repeats), block)
    lines += timing.environment(load_before, timing.loadavg(), allocator=False)
    lines += [f"- wall time {time.perf_counter() - start:.0f} s", "", *body]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
