"""``rnnkit sentiment train | eval | predict | explain``: end to end, --json, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rnnkit.cli import main as cli_main

TINY = ["--model.embed_dim=16", "--model.hidden_size=16", "--epochs=40", "--data.batch_size=4",
        "--train.lr=0.01", "--model.dropout=0", "--model.embed_dropout=0",
        "--train.progress=none"]  # fmt: skip


def test_cli_end_to_end_on_a_tiny_tsv(tiny_tsv: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    args = ["sentiment", "train", "--data", str(tiny_tsv), "--run-dir", str(run),
            "--data.val_source", str(tiny_tsv), *TINY, "--json", "train.json"]  # fmt: skip
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "best val_accuracy 1.0000" in out
    assert (run / "best" / "tokenizer.json").is_file() and (run / "metrics.jsonl").is_file()
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(r.get("kind") == "eval" for r in evals) >= 2  # once per epoch until early stop
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["val_accuracy"] == 1.0 and metrics["measured_on"].endswith("tiny.tsv (12 texts)")

    # A run directory holding a run is refused without --overwrite (nothing is touched).
    before = (run / "metrics.jsonl").read_bytes()
    assert cli_main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "metrics.jsonl").read_bytes() == before

    assert cli_main(["sentiment", "eval", "--checkpoint", str(run), "--data", str(tiny_tsv),
                     "--json", "m.json"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "accuracy 1.0000" in out and "confusion matrix" in out and "positive" in out
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["confusion"] == [[6, 0], [0, 6]] and report["data"] == str(tiny_tsv)

    assert cli_main(["sentiment", "predict", "--checkpoint", str(run), "a gripping story",
                     "--json", "p.json"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("positive\t")
    assert json.loads((tmp_path / "p.json").read_text())[0]["label"] == "positive"
    inp = tmp_path / "in.txt"
    inp.write_text("a dull , boring mess\n\na lovely , gripping story\n", encoding="utf-8")
    assert cli_main(["sentiment", "predict", "--checkpoint", str(run), "--input", str(inp),
                     "--output", "preds.jsonl"]) == 0  # fmt: skip
    preds = [json.loads(x) for x in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert [p["label"] for p in preds] == ["negative", None, "positive"]  # line i -> line i
    assert set(preds[0]["probabilities"]) == {"negative", "positive"}
    assert sum(preds[0]["probabilities"].values()) == pytest.approx(1.0)

    assert cli_main(["sentiment", "explain", "--checkpoint", str(run), "lovely but boring",
                     "--html", "why.html", "--color", "never", "--json", "-"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "most influential" in out and "<span" in (tmp_path / "why.html").read_text()
    exp = json.loads(out[out.index("[") :])  # --json -: the JSON follows the text on stdout
    assert exp[0]["tokens"] == ["lovely", "but", "boring"] and len(exp[0]["scores"]) == 3

    # --overwrite replaces the run; --threads and --device are accepted by every verb.
    assert cli_main([*args, "--overwrite", "--threads", "1", "--device", "cpu"]) == 0
    assert cli_main(["sentiment", "predict", "--checkpoint", str(run), "--threads", "1",
                     "--device", "cpu", "fun"]) == 0  # fmt: skip


def test_cli_bad_inputs_are_one_line_errors(tiny_tsv: Path, tmp_path: Path, capsys, fitted):
    model_dir = tmp_path / "m"
    fitted.save(model_dir)
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("text\tlabel\ncaf\xe9\tpos\n".encode("latin-1"))
    unseen = tmp_path / "unseen.tsv"
    unseen.write_text("text\tlabel\ngood\tpos\nso so\tmeh\n", encoding="utf-8")
    empty = tmp_path / "empty.tsv"
    empty.write_text("text\tlabel\ngood\tpos\n\tneg\n", encoding="utf-8")
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("review,label\ngood,pos\n", encoding="utf-8")
    cases = [
        (["train", "--data", str(nocol)], "no text column 'text'"),
        (["train", "--data", str(latin)], "is not UTF-8 text"),
        (["train", "--data", str(empty)], "line 3: the text is empty"),
        (["train", "--data", str(tiny_tsv), "--model.pooling=sum"], "model.pooling must be"),
        (["train", "--model.hiden_size=3"], "unknown option --model.hiden_size"),
        (["train", "--data", str(tiny_tsv), "--resume"], r"holds no checkpoint/ to resume from"),
        (["eval", "--checkpoint", str(model_dir), "--data", str(unseen)],
         "label 'meh' in .*unseen.tsv was not seen in training"),
        (["predict", "--checkpoint", str(model_dir)], "pass texts as arguments or --input"),
        (["predict", "--checkpoint", str(tmp_path / "none"), "x"], "does not exist"),
        (["predict", "--checkpoint", str(model_dir), "--threads", "0", "x"],
         "must be a positive integer"),
        (["explain", "--checkpoint", str(model_dir), "x", "--target", "meh"], "label 'meh'"),
    ]  # fmt: skip
    for argv, message in cases:
        if argv[0] == "train":
            argv = [*argv, "--run-dir", str(tmp_path / "r")]
        try:
            code = cli_main(["sentiment", *argv])
        except SystemExit as exc:  # argparse-level errors
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2, argv
        assert re.search(message, err), (argv, err)
        assert len(err.strip().splitlines()) == 1, err
