"""The long-range dependency lab: a short real run, the CLI and its errors."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest
import torch

from rnnkit.cli import main
from rnnkit.errors import UserError
from rnnkit.experiments.lab import (
    LabConfig,
    LabModel,
    plot_gradient_flow,
    plot_learning_curves,
    plot_sweep_grid,
    run_lab,
)
from rnnkit.experiments.tasks import ADDING_BASELINE_MSE


@pytest.fixture(autouse=True)
def _keep_threads():
    """The CLI sets torch's thread count and flushes denormals (process-wide): undo both."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)  # torch's default


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
            "--run-dir",
            str(out_dir),
            "--threads",
            "1",
            "--json",
            str(out_dir / "results.json"),
        ]
    )
    assert rc == 0
    doc = json.loads((out_dir / "results.json").read_text())
    assert [(r["cell"], r["length"], r["steps"]) for r in doc["results"]] == [
        ("rnn", 6, 2),
        ("minlstm", 6, 2),
        ("rnn", 9, 2),
        ("minlstm", 9, 2),
    ]
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
        (["lab", "adding", "--device", "gpu7"], "error: unknown device 'gpu7'; use cpu, cuda"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lab", "adding", "--threads", "-1"], "must be a positive integer or auto, got '-1'"),
        (["lab", "sweep", "--threads", "0"], "must be a positive integer or auto, got '0'"),
        (["lab", "copy", "--hiden-size", "8"], "unknown option --hiden-size"),
    ],
)
def test_cli_parse_errors_are_one_line(argv, message, capsys):
    """The shared grammar (rnnkit.cli_common): argparse errors on one line, exit status 2."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_without_task_prints_help(capsys):
    assert main(["lab"]) == 2
    assert "adding" in capsys.readouterr().out


def test_cli_task_json_device_seed(tmp_path, capsys):
    path = tmp_path / "run.json"
    argv = ["lab", "copy", "--cell", "gru", "--length", "6", "--max-steps", "2"]
    argv += ["--eval-every", "1", "--eval-size", "8", "--no-plot", "--device", "cpu"]
    argv += ["--seed", "3", "--threads", "1", "--json", str(path)]
    assert main(argv) == 0
    doc = json.loads(path.read_text())
    assert (doc["task"], doc["cell"], doc["length"], doc["steps"]) == ("copy", "gru", 6, 2)
    assert doc["solved"] is False and doc["solved_at"] is None and doc["metric"] == "error"
    assert [step for step, _ in doc["evals"]] == [1, 2]
    assert doc["best_ratio"] == pytest.approx(doc["best_metric"] / doc["baseline"])
    assert "copy gru T=6: not solved in 2 steps" in capsys.readouterr().out
    # --seed reaches the run: the same seed gives the same evaluations
    assert main([*argv[:-1], str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["evals"] == doc["evals"]


def test_cli_sweep_of_min_cells_only_has_no_gradient_picture(tmp_path):
    out_dir = tmp_path / "min"
    argv = ["lab", "sweep", "--cells", "mingru", "--lengths", "5", "--max-steps", "1"]
    argv += ["--eval-size", "4", "--threads", "1", "--run-dir", str(out_dir)]
    assert main(argv) == 0
    assert (out_dir / "results.csv").exists() and (out_dir / "grid.png").exists()
    assert not (out_dir / "gradients.png").exists()  # the NumPy engine has no min-cells


def test_plots_return_figures_and_save_only_when_given_a_path(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    monkeypatch.chdir(tmp_path)
    cfg = LabConfig(cell="gru", length=6, hidden_size=8, max_steps=3, eval_every=1, eval_size=8)
    res = run_lab(cfg)
    assert isinstance(plot_learning_curves(res), Figure)
    assert isinstance(plot_sweep_grid([res]), Figure)
    assert isinstance(plot_gradient_flow(cfg, ["gru", "mingru"], 6), Figure)
    assert plot_gradient_flow(cfg, ["mingru"], 6) is None
    assert list(tmp_path.iterdir()) == []
    plot_learning_curves(res, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000
    json.dumps(res.as_dict(), allow_nan=False)  # plain numbers


def test_a_device_this_machine_lacks_is_one_error():
    if torch.cuda.device_count() > 99:
        pytest.skip("this machine has cuda:99")
    with pytest.raises(UserError, match="device 'cuda:99' (is not available|does not exist).*use"):
        run_lab(LabConfig(length=4, max_steps=1, device="cuda:99"))


@pytest.mark.gpu
def test_run_lab_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cfg = LabConfig(task="selective", cell="mingru", length=16, num_tokens=4, hidden_size=16)
    res = run_lab(replace(cfg, max_steps=5, eval_every=5, eval_size=32, device="cuda"))
    assert res.steps == 5 and len(res.evals) == 1 and res.metric_name == "error"
