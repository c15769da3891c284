"""What ``rnnkit serve`` loads: the application of each folder, names, and its command line."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.serve import detect_app, load_models
from rnnkit.serve.cli import INSTALL


def test_the_application_comes_from_the_manifest(model_dirs: dict[str, Path]) -> None:
    for app, path in model_dirs.items():
        assert detect_app(path) == app


def test_a_run_directory_is_read_through_best(model_dirs: dict, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "shakespeare"
    shutil.copytree(model_dirs["textgen"], run / "best")
    (m,) = load_models([run])
    assert m.app == "textgen" and m.name == "shakespeare"
    assert m.card and "TextGenerator" in m.card


def test_a_run_directory_of_training_gets_a_card(tmp_path: Path) -> None:
    from tiny_models import QUIET, TEXT

    gen = rnnkit.TextGenerator(preset="tiny", max_steps=4, eval_interval=2, hidden_size=8, **QUIET)
    gen.fit(TEXT, val_text=TEXT[:300], run_dir=tmp_path / "runs" / "shakespeare")
    assert not (tmp_path / "runs" / "shakespeare" / "best" / "README.md").exists()
    (m,) = load_models([tmp_path / "runs" / "shakespeare"])
    assert m.name == "shakespeare" and m.app == "textgen"
    assert m.card.startswith("(This run directory holds no README.md")
    assert "# TextGenerator" in m.card
    best = json.loads((tmp_path / "runs" / "shakespeare" / "best" / "best.json").read_text())
    assert m.metrics == best and m.metrics["val_loss"] == pytest.approx(gen.metrics_["loss"])


def test_folders_written_before_manifests_are_known_by_their_files(
    model_dirs: dict, tmp_path: Path
) -> None:
    for app, path in model_dirs.items():
        old = tmp_path / f"old-{app}"
        shutil.copytree(path, old)
        (old / "manifest.json").unlink()
        assert detect_app(old) == app, app


def test_an_ensemble_is_a_sentiment_model(model_dirs: dict, tmp_path: Path) -> None:
    clf = rnnkit.SentimentClassifier.load(model_dirs["sentiment"])
    ens = rnnkit.SentimentClassifier.from_members([clf, clf])
    ens.save(tmp_path / "sst2")
    (m,) = load_models([tmp_path / "sst2"])
    assert m.app == "sentiment" and len(m.estimator.members_) == 2
    assert "SentimentClassifier" in m.card


def test_names_are_unique_and_url_safe(model_dirs: dict, tmp_path: Path) -> None:
    odd = tmp_path / "my model (v2)"
    shutil.copytree(model_dirs["sentiment"], odd)
    models = load_models([model_dirs["sentiment"], model_dirs["sentiment"], odd])
    assert [m.name for m in models] == ["sentiment", "sentiment-2", "my-model-v2"]


def test_what_is_not_a_model_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(rnnkit.UserError, match="does not exist; pass a run directory"):
        detect_app(tmp_path / "missing")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(rnnkit.UserError, match="is a file"):
        detect_app(tmp_path / "f.txt")
    with pytest.raises(rnnkit.UserError, match="holds no rnnkit model"):
        detect_app(tmp_path)
    with pytest.raises(rnnkit.UserError, match="at least one"):
        load_models([])


def test_a_damaged_model_is_refused_by_its_loader(model_dirs: dict, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dirs["sentiment"], broken)
    (broken / "labels.json").write_text("{}")
    with pytest.raises(rnnkit.UserError, match="^damaged: .*labels.json"):
        load_models([broken])


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "nope"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "does not exist" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["serve", str(tmp_path), "--workers", "0"])
    assert exc.value.code == 2


def test_without_the_extra_the_cli_says_what_to_install(model_dirs: dict) -> None:
    code = (
        "import sys; sys.modules['fastapi'] = None\n"  # as if FastAPI were not installed
        "from rnnkit.cli import main\n"
        f"raise SystemExit(main(['serve', {str(model_dirs['sentiment'])!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {INSTALL}"
    assert 'pip install "rnnkit[serve]"' in INSTALL


def test_a_taken_port_is_one_line(model_dirs: dict) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "rnnkit", "serve", str(model_dirs["sentiment"])]
        proc = subprocess.run(
            [*cmd, "--port", str(port)], capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "in use" in last
