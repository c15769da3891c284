"""Progress output and the metrics log.

- :class:`Progress`: a live tqdm bar (steps, loss, tokens/s, ETA) when stderr is
  a terminal, plain log lines every ``log_interval`` steps otherwise (CI logs,
  ``nohup``, pipes), or nothing.
- :class:`MetricsLog`: one JSON object per line in ``metrics.jsonl``, flushed
  on every write so a crash loses nothing already reported.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["MetricsLog", "Progress", "read_metrics"]


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class Progress:
    """Report training progress on ``stream`` (default stderr).

    Args:
        total: total optimizer steps.
        initial: steps already done (resume).
        mode: ``"auto"`` (bar on a TTY, lines otherwise), ``"bar"``, ``"lines"``, ``"none"``.
        log_interval: steps between plain lines.
        max_seconds: the run's time budget (0: none). The ETA never exceeds the
            time left in it, and :meth:`update` may pass ``total`` = the steps
            the budget is planned to reach, so "step 120/2250" and the bar's
            ETA describe the run that will happen, not ``max_steps``.
    """

    def __init__(
        self,
        total: int,
        *,
        initial: int = 0,
        mode: str = "auto",
        log_interval: int = 10,
        stream: TextIO | None = None,
        max_seconds: float = 0.0,
    ) -> None:
        if mode not in ("auto", "bar", "lines", "none"):
            raise ValueError(f"progress mode must be auto, bar, lines or none, got {mode!r}")
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.total = total
        self.initial = initial
        self.log_interval = max(1, log_interval)
        self.max_seconds = max_seconds
        self._t0 = time.perf_counter()
        self._bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=initial, file=self.stream, unit="step", dynamic_ncols=True
            )

    def update(
        self,
        step: int,
        *,
        loss: float,
        tokens_per_s: float,
        total: int | None = None,
        **extra: float,
    ) -> None:
        """Report that optimizer step ``step`` (1-based count of steps done) finished.

        ``total``, when given, replaces the step count the run is expected to
        reach (a time budget's plan, re-estimated as the speed is measured).
        """
        if total is not None and total != self.total:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
        if self.mode == "bar" and self._bar is not None:
            self._bar.update(step - self._bar.n)
            shown = {k: f"{v:.3g}" for k, v in extra.items() if k == "grad_norm"}
            self._bar.set_postfix(
                loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:,.0f}", **shown, refresh=False
            )
        elif self.mode == "lines" and (step % self.log_interval == 0 or step == self.total):
            elapsed = time.perf_counter() - self._t0
            done = step - self.initial
            eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
            if self.max_seconds:
                left = max(0.0, self.max_seconds - elapsed)
                eta = left if not math.isfinite(eta) else min(eta, left)
            parts = [f"step {step}/{self.total}", f"loss {loss:.4f}"]
            parts += [f"{k} {v:.4g}" for k, v in extra.items()]
            parts += [f"{tokens_per_s:,.0f} tok/s", f"eta {_fmt_seconds(eta)}"]
            print(" | ".join(parts), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if self.mode == "none":
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class MetricsLog:
    """Append-only ``metrics.jsonl``.

    On resume (``truncate_after=step``) records of steps after the checkpoint
    are dropped, so the file holds exactly one curve as if never interrupted.
    """

    def __init__(self, path: str | os.PathLike[str], *, truncate_after: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after is not None and self.path.exists():
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= truncate_after]
            tmp = self.path.with_suffix(".jsonl.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                for r in kept:
                    f.write(json.dumps(r) + "\n")
            os.replace(tmp, self.path)
        elif truncate_after is None and self.path.exists():
            self.path.unlink()
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` (a torn last line from a crash is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
