"""``rnnkit gradients`` end to end: the table, the plot, the torch cross-check, the errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.experiments.gradients import (
    GradientsConfig,
    cell_gradients,
    plot_gradients,
    torch_hidden_gradients,
)


def _ratios(out: str) -> dict[str, float]:
    """The printed |dL/dh_1| / |dL/dh_T| per cell."""
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(\w+)\s+\|dL/dh_1\| / \|dL/dh_\d+\| = (\S+)", out, re.M)
    }


def test_main_job_prints_table_checks_torch_and_writes_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    png = tmp_path / "gradients.png"
    code = main(["gradients", "--cell", "rnn,lstm,gru", "--length", "100", "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 0, out
    header = next(line for line in out.splitlines() if line.strip().startswith("step t"))
    assert header.split() == ["step", "t", "rnn", "lstm", "gru"]
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+\s", line)]
    assert [int(r[0]) for r in rows] == [1, *range(10, 101, 10)]
    ratios = _ratios(out)
    assert ratios["rnn"] < 1e-10  # the plain RNN's gradient vanishes
    assert ratios["lstm"] > 1e-5 and ratios["gru"] > 1e-3  # open gates keep it
    assert "rnn   |dL/dh_1|" in out and "vanishes" in out
    m = re.search(r"torch cross-check .* max relative difference (\S+) .* OK", out)
    assert m and float(m.group(1)) < 1e-8
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_large_scale_explodes(capsys: pytest.CaptureFixture[str]):
    assert main(["gradients", "--cell", "rnn", "--scale", "5", "--length", "60", "--no-check"]) == 0
    out = capsys.readouterr().out
    assert _ratios(out)["rnn"] > 1e3 and "explodes" in out
    assert "torch cross-check" not in out


def test_torch_gate_init_vanishes_for_gated_cells_too(capsys: pytest.CaptureFixture[str]):
    """At torch's default init the gates sit near 0.5, so LSTM/GRU lose the gradient too."""
    code = main(["gradients", "--cell", "lstm,gru", "--gate-init", "torch", "--no-check"])
    assert code == 0
    ratios = _ratios(capsys.readouterr().out)
    assert ratios["lstm"] < 1e-10 and ratios["gru"] < 1e-10


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_numpy_gradients_equal_torch_autograd(kind: str):
    cfg = GradientsConfig(cells=(kind,), length=30, hidden_size=8, input_size=5, batch=3, seed=2)
    res = cell_gradients(kind, cfg)
    theirs = torch_hidden_gradients(kind, res.params, cfg)
    assert res.grads.shape == theirs.shape == (3, 30, 8)
    # per step, relative to that step's norm (the norms span many orders of magnitude)
    err = np.linalg.norm(res.grads - theirs, axis=(0, 2)) / np.linalg.norm(theirs, axis=(0, 2))
    assert err.max() < 1e-10


def test_relu_rnn_and_every(capsys: pytest.CaptureFixture[str]):
    code = main(
        ["gradients", "--cell", "rnn", "--nonlinearity", "relu", "--length", "12", "--every", "4"]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = [int(line.split()[0]) for line in out.splitlines() if re.match(r"^\s+\d+\s", line)]
    assert rows == [1, 4, 8, 12]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cell", "rnn,transformer"], "--cell must be a comma list of rnn, lstm, gru"),
        (["--cell", ","], "--cell must be a comma list"),
        (["--length", "1"], "--length must be >= 2"),
        (["--hidden-size", "0"], "--hidden-size must be >= 1, got 0"),
        (["--scale", "0"], "--scale must be a positive number, got 0.0"),
        (["--scale", "nan"], "--scale must be a positive number"),
        (["--every", "0"], "--every must be >= 1, got 0"),
        (["--plot", "out.jpg"], "--plot must name a .png file, got 'out.jpg'"),
        (["--plot", "no/such/dir/g.png"], "does not exist; create it first"),
    ],
)
def test_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]):
    assert main(["gradients", "--no-check", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_help_explains_scale(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["gradients", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "spectral radius" in out
        and "explodes" in out
        and "(default: 1.0)" in out
        and "chrono" in out
    )


def test_json_output_parses(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "out" / "gradients.json"
    assert main(["gradients", "--cell", "rnn,gru", "--length", "20", "--json", str(path)]) == 0
    printed = _ratios(capsys.readouterr().out)
    doc = json.loads(path.read_text())
    assert doc["config"]["length"] == 20 and doc["config"]["cells"] == ["rnn", "gru"]
    assert [c["cell"] for c in doc["cells"]] == ["rnn", "gru"]
    for cell in doc["cells"]:
        assert len(cell["norms"]) == 20 and cell["verdict"] in ("vanishes", "survives", "explodes")
        assert cell["ratio"] == pytest.approx(cell["norms"][0] / cell["norms"][-1])
        assert f"{cell['ratio']:.1e}" == f"{printed[cell['cell']]:.1e}"
    assert doc["torch_check"]["ok"] is True and doc["torch_check"]["max_relative_difference"] < 1e-8


def test_json_to_stdout_moves_the_report_to_stderr(capsys: pytest.CaptureFixture[str]):
    assert main(["gradients", "--cell", "lstm", "--length", "8", "--no-check", "--json", "-"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)  # stdout holds the JSON only
    assert doc["torch_check"] is None and doc["cells"][0]["cell"] == "lstm"
    assert "step t" in err and "lstm  |dL/dh_1|" in err


def test_plot_returns_a_figure_and_saves_only_when_given_a_path(tmp_path: Path, monkeypatch):
    from matplotlib.figure import Figure

    monkeypatch.chdir(tmp_path)
    cfg = GradientsConfig(cells=("rnn", "gru"), length=12, hidden_size=4, input_size=3, batch=2)
    results = [cell_gradients(k, cfg) for k in cfg.cells]
    fig = plot_gradients(results, cfg)
    assert isinstance(fig, Figure) and len(fig.axes[0].get_lines()) == 2
    assert list(tmp_path.iterdir()) == []
    assert plot_gradients(results, cfg, tmp_path / "g.png") is not None
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_no_torch_no_pyplot_without_check():
    """--no-check needs NumPy only, and a saved plot leaves matplotlib's global state alone."""
    code = (
        "import sys, tempfile, os\n"
        "from rnnkit.cli import main\n"
        "d = tempfile.mkdtemp()\n"
        "rc = main(['gradients', '--cell', 'rnn', '--length', '6', '--no-check',\n"
        "           '--plot', os.path.join(d, 'g.png')])\n"
        "print(rc, 'torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "0 False False", proc.stdout + proc.stderr
