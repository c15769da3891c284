"""Fault injection: signals, kill -9 (also mid-checkpoint), two writers, a full disk.

Each test runs the real Trainer in a separate process (tests/training/fault_worker.py)
and injects the fault for real: SIGTERM/SIGINT, SIGKILL at random moments, a
second process on the same run directory, an OSError(ENOSPC) from the writer.
The outcome that matters: no work lost beyond the last checkpoint, the
previous checkpoint never damaged, and ``--resume`` ending with exactly the
weights of an uninterrupted run.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnkit.training import resolve_checkpoint, verify_checkpoint

WORKER = Path(__file__).with_name("fault_worker.py")


def _start(
    run_dir: Path,
    steps: int,
    sleep: float,
    *,
    resume: bool = False,
    out: Path | None = None,
    delay: float = 0.0,
) -> subprocess.Popen:
    cmd = [sys.executable, str(WORKER), str(run_dir), str(steps), str(sleep)]
    if resume:
        cmd.append("--resume")
    if out is not None:
        cmd += ["--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if delay:
        env["RNNKIT_TEST_CHECKPOINT_DELAY"] = str(delay)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _step(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "checkpoint" / "trainer_state.json").read_text())["step"]
    except (OSError, ValueError):
        return -1


def _wait_for_step(run_dir: Path, step: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while _step(run_dir) < step:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < end, "the worker made no progress"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The digest of the final weights of an uninterrupted 12-step run."""
    d = tmp_path_factory.mktemp("reference")
    code, err = _finish(_start(d / "run", 12, 0.0, out=d / "digest"))
    assert code == 0, err
    return (d / "digest").read_text()


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_after_a_step_with_a_checkpoint_and_resume_is_exact(
    tmp_path: Path, reference: str, sig: int, status: int
) -> None:
    run = tmp_path / "run"
    proc = _start(run, 12, 0.15)
    _wait_for_step(run, 2, proc)
    proc.send_signal(sig)
    code, err = _finish(proc)
    assert code == status, err
    name = signal.Signals(sig).name
    line = [x for x in err.splitlines() if x.startswith(f"stopped by {name}")]
    assert line and "checkpoint written to" in line[0] and "--resume" in line[0], err
    stopped_at = int(line[0].split("after step ")[1].split(";")[0])
    assert _step(run) == stopped_at < 12  # the checkpoint holds the last finished step
    code, err = _finish(_start(run, 12, 0.0, resume=True, out=tmp_path / "digest"))
    assert code == 0, err
    assert (tmp_path / "digest").read_text() == reference


def test_a_second_signal_stops_at_once_and_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(run, 50, 1.0)  # long steps: the second signal lands mid-step
    _wait_for_step(run, 1, proc)
    before = _step(run)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    code, err = _finish(proc)
    assert code == 143, err
    assert "stopped at once" in err or "is kept" in err, err
    verify_checkpoint(run / "checkpoint")
    assert _step(run) in (before, before + 1)


def _kill9_cycles(tmp_path: Path, reference: str, cycles: int, seed: int) -> None:
    rng = random.Random(seed)
    run = tmp_path / "run"
    for _ in range(cycles):
        resume = (run / "checkpoint").exists() or (run / "checkpoint.old").exists()
        proc = _start(run, 12, 0.03, resume=resume, delay=0.06)
        time.sleep(rng.uniform(0.3, 1.5))  # import + a few steps + checkpoint writes
        proc.kill()
        proc.communicate()
        if (run / "checkpoint").exists() or (run / "checkpoint.old").exists():
            resolve_checkpoint(run / "checkpoint")  # verified; falls back to checkpoint.old
    code, err = _finish(
        _start(
            run,
            12,
            0.0,
            resume=(run / "checkpoint").exists() or (run / "checkpoint.old").exists(),
            out=tmp_path / "digest",
        )
    )
    assert code == 0, err
    assert (tmp_path / "digest").read_text() == reference
    leftovers = [p.name for p in run.iterdir() if ".tmp-" in p.name]
    assert not leftovers, leftovers  # cleaned up by the later writers


def test_kill_9_at_random_moments_then_resume_is_exact(tmp_path: Path, reference: str) -> None:
    _kill9_cycles(tmp_path, reference, cycles=2, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_kill_9_loop(tmp_path: Path, reference: str, seed: int) -> None:
    _kill9_cycles(tmp_path, reference, cycles=6, seed=seed)


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over(
    tmp_path: Path, reference: str
) -> None:
    run = tmp_path / "run"
    first = _start(run, 12, 3.0)  # slow steps: it is still running while the others start
    _wait_for_step(run, 1, first)
    code, err = _finish(_start(run, 12, 0.0, resume=True))
    assert code == 2 and "is in use by process" in err and str(first.pid) in err, err
    code, err = _finish(_start(tmp_path / "run", 12, 0.0))
    assert code == 2 and "is in use by process" in err, err
    first.kill()
    first.communicate()
    code, err = _finish(_start(run, 12, 0.0, resume=True, out=tmp_path / "digest"))
    assert code == 0, err
    assert "taking over the lock" in err
    assert (tmp_path / "digest").read_text() == reference
    assert not (run / ".rnnkit.lock").exists()


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from rnnkit.training import StepResult, TrainConfig, Trainer
    from rnnkit.training import checkpoint as ckpt

    real = ckpt.save_file
    calls = {"n": 0}

    def full_disk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 4:  # the first checkpoint (4 safetensors files) fits, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", full_disk)
    model = torch.nn.Linear(2, 1)
    batches = [(torch.randn(4, 2), torch.randn(4, 1)) for _ in range(3)]
    cfg = TrainConfig(
        max_steps=5,
        checkpoint_interval=1,
        eval_interval=0,
        warmup_steps=1,
        progress="none",
        plot=False,
        carry_state=False,
    )

    def loss_fn(m, batch, state):
        return StepResult(torch.nn.functional.mse_loss(m(batch[0]), batch[1]))

    with pytest.raises(OSError) as info:
        Trainer(model, loss_fn, batches, config=cfg, run_dir=tmp_path).fit()
    assert info.value.errno == errno.ENOSPC
    verify_checkpoint(tmp_path / "checkpoint")
    assert _step(tmp_path) == 1
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    from rnnkit.cli import main

    monkeypatch.setattr("rnnkit.cli.build_parser", lambda argv: _raising_parser(info.value))
    assert main(["x"]) == 2


def _raising_parser(exc: BaseException):
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("x")

    def boom(args):
        raise exc

    p.set_defaults(func=boom)
    return p


def test_resume_without_repeating_the_config_keeps_config_and_artefacts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, err = _finish(_start(run, 3, 0.0))
    assert code == 0, err
    import torch

    from rnnkit.training import StepResult, TrainConfig, Trainer, read_json

    sys.path.insert(0, str(WORKER.parent))
    try:
        from fault_worker import Net
    finally:
        sys.path.pop(0)
    g = torch.Generator().manual_seed(0)  # the worker's data, so the run can find its place
    batches = [(torch.randn(8, 12, 3, generator=g), torch.randn(8, generator=g)) for _ in range(5)]
    cfg = TrainConfig(
        max_steps=5,
        checkpoint_interval=1,
        eval_interval=0,
        warmup_steps=2,
        progress="none",
        plot=False,
        carry_state=False,
        lr=1e-2,
        seed=3,
    )

    def loss_fn(m, batch, state):
        return StepResult(torch.nn.functional.mse_loss(m(batch[0]), batch[1]))

    Trainer(Net(), loss_fn, batches, config=cfg, run_dir=run, resume=True).fit()
    assert read_json(run / "checkpoint" / "config.json") == {"kind": "fault-worker"}
    assert read_json(run / "checkpoint" / "vocab.json") == {"n": 1}
    assert read_json(run / "checkpoint" / "trainer_state.json")["step"] == 5


def test_interrupt_inside_an_optimizer_step_says_truthfully_that_nothing_was_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from rnnkit.training import StepResult, TrainConfig, Trainer

    model = torch.nn.Linear(2, 1)
    cfg = TrainConfig(
        max_steps=5,
        checkpoint_interval=100,
        eval_interval=0,
        warmup_steps=1,
        progress="none",
        plot=False,
        carry_state=False,
    )

    def loss_fn(m, batch, state):
        return StepResult(torch.nn.functional.mse_loss(m(batch[0]), batch[1]))

    trainer = Trainer(
        model, loss_fn, [(torch.randn(4, 2), torch.randn(4, 1))], config=cfg, run_dir=tmp_path
    )

    def interrupted_step(*a, **k):
        raise KeyboardInterrupt

    trainer.optimizer.step = interrupted_step
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    err = capsys.readouterr().err
    assert "no checkpoint had been written yet, so nothing was saved" in err
    assert "is kept" not in err
