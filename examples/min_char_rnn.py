"""A character-level language model in NumPy alone: the classic min-char-rnn, on rnnkit.reference.

The model reads one character at a time (one-hot, size V) and predicts the next:

    h_t = cell(x_t, h_{t-1})            rnnkit.reference.forward (rnn, lstm or gru)
    p_t = softmax(W_y h_t + b_y)        a linear head, trained by hand here

Training is truncated backpropagation through time: the text is cut into chunks of
--seq-length characters, the hidden state is carried from one chunk to the next but
no gradient flows across a chunk boundary. Every gradient below is hand-written and
verified against torch.autograd and finite differences in tests/reference/.

    python examples/min_char_rnn.py                 # the built-in text, a few seconds
    python examples/min_char_rnn.py input.txt --steps 20000 --cell lstm
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rnnkit.reference import Adam, backward, clip_grad_norm, forward, softmax_cross_entropy

# Lewis Carroll, "Alice's Adventures in Wonderland" (1865), public domain.
TEXT = (
    "Alice was beginning to get very tired of sitting by her sister on the bank, and of "
    "having nothing to do: once or twice she had peeped into the book her sister was "
    "reading, but it had no pictures or conversations in it, 'and what is the use of a "
    "book,' thought Alice 'without pictures or conversations?' So she was considering in "
    "her own mind (as well as she could, for the hot day made her feel very sleepy and "
    "stupid), whether the pleasure of making a daisy-chain would be worth the trouble of "
    "getting up and picking the daisies, when suddenly a White Rabbit with pink eyes ran "
    "close by her.\n"
)
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def init_params(cell: str, V: int, H: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """torch's default init U(-1/sqrt(H), 1/sqrt(H)); the cell's names are torch.nn's."""
    k, G = 1 / np.sqrt(H), GATES[cell]
    shapes = [(G * H, V), (G * H, H), (G * H,), (G * H,), (V, H), (V,)]
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "head_w", "head_b"]
    return {name: rng.uniform(-k, k, shape) for name, shape in zip(names, shapes, strict=True)}


def cell_params(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The recurrent cell's own parameters, without the head."""
    return {k: v for k, v in params.items() if not k.startswith("head_")}


def sample(params: dict, cell: str, state, first: int, n: int, rng, chars: list[str]) -> str:
    """Generate n characters, feeding each sampled character back in as the next input."""
    V, out, ix = len(chars), [], first
    for _ in range(n):
        x = np.zeros((1, 1, V))  # (B=1, T=1, V) one-hot
        x[0, 0, ix] = 1.0
        h, state, _ = forward(cell, x, cell_params(params), state)
        logits = h[0, 0] @ params["head_w"].T + params["head_b"]  # (V,)
        p = np.exp(logits - logits.max())
        ix = rng.choice(V, p=p / p.sum())
        out.append(chars[ix])
    return "".join(out)


def train(
    text: str,
    *,
    cell: str = "rnn",
    hidden_size: int = 64,
    seq_length: int = 25,
    steps: int = 2000,
    lr: float = 1e-2,
    clip: float = 5.0,
    sample_every: int = 500,
    seed: int = 0,
) -> list[float]:
    """Train on ``text``; print progress and samples. Returns the loss of every step."""
    chars = sorted(set(text))
    V, index = len(chars), {ch: i for i, ch in enumerate(chars)}
    data = np.array([index[ch] for ch in text])
    if len(data) < seq_length + 1:
        raise ValueError(f"the text has {len(data)} characters; it needs more than {seq_length}")
    rng = np.random.default_rng(seed)
    params = init_params(cell, V, hidden_size, rng)
    optimizer = Adam(params, lr=lr)
    print(f"{len(data)} chars, {V} unique; {cell}, H={hidden_size}, chunks of {seq_length}")
    losses, smooth, pos, state = [], np.log(V), 0, None
    for step in range(1, steps + 1):
        if pos + seq_length + 1 > len(data):
            pos, state = 0, None  # back to the start of the text, with a fresh state
        inputs = data[pos : pos + seq_length]
        targets = data[pos + 1 : pos + seq_length + 1]  # the next character of each input
        x = np.eye(V)[inputs][None]  # (1, T, V) one-hot
        # Forward: the cell from the carried state, then the head on every step.
        h, state, cache = forward(cell, x, cell_params(params), state)  # h (1, T, H)
        logits = h @ params["head_w"].T + params["head_b"]  # (1, T, V)
        loss, dlogits = softmax_cross_entropy(logits, targets[None])
        # Backward: the head by hand, then BPTT through the chunk. No d_final_state:
        # the state is carried into the next chunk but detached (truncated BPTT).
        grads = {"head_w": np.einsum("btv,bth->vh", dlogits, h), "head_b": dlogits.sum((0, 1))}
        _, cell_grads, _ = backward(cell, dlogits @ params["head_w"], cache)  # (1, T, H) in
        grads.update(cell_grads)
        clip_grad_norm(grads, clip)  # one global norm: long chunks can explode (Pascanu 2013)
        optimizer.step(grads)
        losses.append(loss)
        smooth = 0.99 * smooth + 0.01 * loss
        pos += seq_length
        if step % sample_every == 0 or step == steps:
            print(f"step {step:5d}  loss {smooth:.3f} nats/char")
            text_out = sample(params, cell, state, inputs[-1], 120, rng, chars)
            print("    " + text_out.replace("\n", " | "))
    return losses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train a character-level RNN with the NumPy engine and print samples.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("text", nargs="?", help="a UTF-8 text file (default: a built-in paragraph)")
    parser.add_argument("--cell", choices=sorted(GATES), default="rnn")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--seq-length", type=int, default=25, help="characters per BPTT chunk")
    parser.add_argument("--steps", type=int, default=2000, help="training steps (chunks)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    text = TEXT
    if args.text:
        try:
            with open(args.text, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read {args.text!r}: {exc}", file=sys.stderr)
            return 2
    try:
        train(text, **{k: v for k, v in vars(args).items() if k != "text"})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
