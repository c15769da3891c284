"""The long-range dependency lab: task generators, a short real run, the CLI and its errors."""

from __future__ import annotations

import csv

import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.synthetic import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_memory,
    selective_copying,
)
from rnnkit.errors import UserError
from rnnkit.pipelines.lab import LabConfig, LabModel, run_lab


@pytest.fixture(autouse=True)
def _keep_threads():
    """The CLI sets torch's thread count and flushes denormals (process-wide): undo both."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)  # torch's default


# ------------------------------------------------------------------- tasks


def test_adding_problem_targets_are_the_sum_of_the_marked_values():
    x, y = adding_problem(256, 31, seed=0)
    assert x.shape == (256, 31, 2) and y.shape == (256, 1)
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert (markers.sum(1) == 2).all() and set(markers.unique().tolist()) == {0.0, 1.0}
    # one marker in each half, [0, 15) and [15, 31)
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    for i in range(256):  # the definition, row by row
        marked = [values[i, t].item() for t in range(31) if markers[i, t] == 1]
        assert y[i, 0].item() == pytest.approx(sum(marked))
    torch.testing.assert_close(adding_problem(256, 31, seed=0).inputs, x)  # seeded
    assert not torch.equal(adding_problem(256, 31, seed=1).inputs, x)


def test_adding_baseline_mse_is_one_sixth():
    _, y = adding_problem(200_000, 4, seed=3)
    # Var(u1 + u2) = 2/12 for independent U(0, 1): the published trivial baseline.
    assert float(((y - 1.0) ** 2).mean()) == pytest.approx(ADDING_BASELINE_MSE, abs=2e-3)


def test_copy_memory_layout():
    x, y = copy_memory(16, 20, num_symbols=5, memory_length=4, seed=0)
    assert x.shape == y.shape == (16, 28)
    assert ((x[:, :4] >= 1) & (x[:, :4] <= 5)).all()
    assert (x[:, 4:23] == 0).all() and (x[:, 23] == 6).all() and (x[:, 24:] == 0).all()
    assert (y[:, :24] == 0).all()
    assert torch.equal(y[:, 24:], x[:, :4])  # replay after the delimiter


def test_selective_copying_tokens_in_order():
    x, y = selective_copying(32, 50, num_tokens=6, num_symbols=9, seed=0)
    assert x.shape == (32, 56) and y.shape == (32, 6)
    assert (x[:, 50:] == 10).all()
    body = x[:, :50]
    assert ((body > 0).sum(1) == 6).all()
    for i in range(32):
        assert body[i][body[i] > 0].tolist() == y[i].tolist()
    # positions differ between rows (unlike copy memory)
    assert len({tuple((body[i] > 0).nonzero().flatten().tolist()) for i in range(32)}) > 1


def test_generator_errors():
    with pytest.raises(ValueError, match="length must be an integer >= 2"):
        adding_problem(4, 1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        copy_memory(0, 5)
    with pytest.raises(ValueError, match="length must be an integer >= 8"):
        selective_copying(2, 5, num_tokens=8)


# ------------------------------------------------------------- training


def test_lstm_learns_a_short_adding_problem():
    torch.set_num_threads(1)  # tiny model: one thread is faster on a shared 2-core machine
    cfg = LabConfig(
        cell="lstm",
        length=10,
        hidden_size=32,
        lr=1e-2,
        max_steps=800,
        eval_every=25,
        eval_size=256,
        solved_ratio=0.05,
        seed=0,
    )
    res = run_lab(cfg)
    assert res.solved, res.summary()
    assert res.evals[-1][1] < 0.05 * res.baseline
    assert res.baseline == pytest.approx(ADDING_BASELINE_MSE, rel=0.2)
    assert res.summary() == f"solved at step {res.solved_at}"
    # a budget too small to learn anything reports "not solved" with the best metric
    short = run_lab(LabConfig(cell="lstm", length=10, max_steps=3, eval_every=1, eval_size=64))
    assert not short.solved and short.steps == 3 and len(short.evals) == 3
    assert short.summary().startswith("not solved in 3 steps (best mse ")


@pytest.mark.parametrize("task", ["copy", "selective"])
@pytest.mark.parametrize("cell", ["gru", "minlstm"])
def test_token_tasks_run_and_shapes(task, cell):
    cfg = LabConfig(
        task=task,
        cell=cell,
        length=12,
        num_tokens=4,
        hidden_size=16,
        max_steps=2,
        eval_every=1,
        eval_size=8,
    )
    model = LabModel(cfg)
    batch = cfg.batch(3, 0)
    out = model(batch.inputs)
    assert out.shape == (*batch.targets.shape, cfg.num_symbols + 1)
    res = run_lab(cfg)
    assert res.metric_name == "error" and res.baseline == pytest.approx(1 - 1 / 8)


def test_config_errors():
    with pytest.raises(UserError, match="unknown cell 'tcn'; choose one of rnn, lstm"):
        LabConfig(cell="tcn")
    with pytest.raises(UserError, match="unknown task"):
        LabConfig(task="parity")
    with pytest.raises(UserError, match="length must be an integer >= 2"):
        LabConfig(length=1)
    with pytest.raises(UserError, match="needs length >= num-tokens"):
        LabConfig(task="selective", length=4, num_tokens=8)
    with pytest.raises(UserError, match="lr must be > 0"):
        LabConfig(lr=0.0)


# ------------------------------------------------------------------ CLI


def test_cli_task_end_to_end(tmp_path, capsys):
    png = tmp_path / "curve.png"
    rc = main(
        [
            "lab",
            "adding",
            "--cell",
            "mingru",
            "--length",
            "12",
            "--max-steps",
            "4",
            "--eval-every",
            "2",
            "--eval-size",
            "32",
            "--plot",
            str(png),
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    out, err = capsys.readouterr()
    assert "adding mingru T=12: not solved in 4 steps" in out
    assert "step 2: train loss" in err and "x baseline" in err  # progress lines
    assert png.stat().st_size > 1000


def test_cli_sweep_end_to_end(tmp_path, capsys):
    out_dir = tmp_path / "sweep"
    rc = main(
        [
            "lab",
            "sweep",
            "--cells",
            "rnn,minlstm",
            "--lengths",
            "6,9",
            "--max-steps",
            "2",
            "--eval-every",
            "1",
            "--eval-size",
            "16",
            "--out",
            str(out_dir),
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    with open(out_dir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["cell"], r["length"]) for r in rows] == [
        ("rnn", "6"),
        ("minlstm", "6"),
        ("rnn", "9"),
        ("minlstm", "9"),
    ]
    assert all(r["task"] == "adding" and r["steps"] == "2" for r in rows)
    assert "| minlstm | 9 |" in (out_dir / "results.md").read_text()
    assert (out_dir / "grid.png").stat().st_size > 1000
    assert (out_dir / "gradients.png").stat().st_size > 1000  # rnnkit gradients, beside it
    assert "| rnn | 6 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lab", "adding", "--cell", "tcn"], "error: unknown cell 'tcn'; choose one of"),
        (["lab", "adding", "--length", "1"], "error: length must be an integer >= 2"),
        (["lab", "copy", "--max-steps", "0"], "error: max-steps must be an integer >= 1"),
        (["lab", "sweep", "--lengths", "50,abc"], "error: --lengths must be comma-separated"),
        (["lab", "sweep", "--cells", ","], "error: --cells is empty"),
        (["lab", "sweep", "--cells", "rnn,nope"], "error: unknown cell 'nope'"),
        (["lab", "adding", "--threads", "-1"], "error: --threads must be >= 0"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_cli_without_task_prints_help(capsys):
    assert main(["lab"]) == 2
    assert "adding" in capsys.readouterr().out
