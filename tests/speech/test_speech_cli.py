"""``rnnkit speech train | eval | transcribe (predict)`` on generated clips."""

from __future__ import annotations

import json

import pytest

from rnnkit.cli import main

TRAIN = [
    "--features.n_mels=20",
    "--features.time_masks=0",
    "--features.freq_masks=0",
    "--model.cell=gru",
    "--model.num_layers=1",
    "--model.hidden_size=48",
    "--model.conv_channels=32",
    "--model.bidirectional=false",
    "--model.dropout=0",
    "--data.batch_size=6",
    "--data.val_fraction=0.2",
    "--train.max_steps=150",
    "--train.lr=0.03",
    "--train.warmup_steps=5",
    "--train.eval_interval=75",
    "--train.progress=none",
    "--train.plot=false",
]


def test_cli_train_eval_transcribe(clip_dir, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    manifest = str(clip_dir / "manifest.csv")
    args = ["speech", "train", "--data", manifest, "--run-dir", str(run), "--threads", "1"]
    assert main([*args, *TRAIN, "--json", str(tmp_path / "train.json")]) == 0
    out = capsys.readouterr().out
    assert "done: 150 steps" in out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_wer" in r for r in records)
    kept = json.loads((tmp_path / "train.json").read_text())
    assert set(kept) >= {"val_wer", "val_cer", "measured_on"}

    eval_json = tmp_path / "eval.json"
    assert (
        main(
            [
                "speech",
                "eval",
                "--checkpoint",
                str(run),
                "--data",
                manifest,
                "--beam",
                "4",
                "--json",
                str(eval_json),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "12 utterances | beam 4 | WER" in out
    wer = float(out.split("WER ")[1].split()[0])
    assert wer <= 0.2
    m = json.loads(eval_json.read_text())
    assert (
        m["utterances"] == 12
        and m["decoder"] == "beam 4"
        and m["wer"] == pytest.approx(wer, abs=1e-4)
    )

    wav = clip_dir / "c1.wav"
    png = tmp_path / "align.png"
    assert (
        main(
            [
                "speech",
                "transcribe",
                "--checkpoint",
                str(run),
                str(wav),
                "--timestamps",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"{wav}: ba c" in out and png.stat().st_size > 1000
    assert (
        main(
            [
                "speech",
                "transcribe",
                "--checkpoint",
                str(run),
                str(wav),
                "--stream",
                "--chunk-ms",
                "50",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.rstrip().endswith("ba c")
    assert main(["speech", "transcribe", "--checkpoint", str(run), str(wav), "--warps", "1"]) == 0
    assert f"{wav}: ba c" in capsys.readouterr().out
    for warps, says in (("0.9,x", "--warps takes comma-separated"), ("3", "between 0.5 and 1.5")):
        cmd = ["speech", "eval", "--checkpoint", str(run), "--data", manifest, "--warps", warps]
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1

    # predict is transcribe; --json - owns stdout and parses
    assert main(["speech", "predict", "--checkpoint", str(run), str(wav), "--json", "-"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["file"] == str(wav) and row["text"] == "ba c"
    assert [w["word"] for w in row["words"]] == ["ba", "c"]


def test_cli_errors(clip_dir, tmp_path, capsys) -> None:
    assert main(["speech", "transcribe", "--checkpoint", str(tmp_path / "none"), "x.wav"]) == 2
    assert "error: checkpoint directory" in capsys.readouterr().err
    assert main(["speech", "train", "--data", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert "error: manifest" in err and "not found" in err
    assert main(["speech", "train", "--data", "fsdd", "--data.task=sentences"]) == 2
    assert "error: data.task must be words or connected" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["speech", "train", "--model.hiden_size=3"])
    assert exc.value.code == 2
    assert "did you mean --model.hidden_size" in capsys.readouterr().err
    for verb in ("transcribe", "predict"):
        with pytest.raises(SystemExit) as exc:
            main(["speech", verb, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "--beam" in out and "--checkpoint" in out and "--json" in out
    with pytest.raises(SystemExit) as exc:
        main(["speech", "eval", "--help"])
    assert "--device" in capsys.readouterr().out


def test_cli_resume_continues_and_a_run_is_never_overwritten(clip_dir, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    base = [
        "speech",
        "train",
        "--data",
        str(clip_dir / "manifest.csv"),
        "--run-dir",
        str(run),
        "--threads",
        "1",
        "--features.n_mels=20",
        "--model.cell=gru",
        "--model.num_layers=1",
        "--model.hidden_size=16",
        "--model.conv_channels=8",
        "--model.bidirectional=false",
        "--data.batch_size=6",
        "--data.val_fraction=0.2",
        "--train.eval_interval=3",
        "--train.progress=none",
        "--train.plot=false",
    ]
    assert main([*base, "--train.max_steps=3"]) == 0
    assert "done: 3 steps" in capsys.readouterr().out
    assert main([*base, "--train.max_steps=5", "--resume"]) == 0
    assert "done: 5 steps" in capsys.readouterr().out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5]

    assert main([*base, "--train.max_steps=2"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "checkpoint").is_dir()  # untouched
    assert main([*base, "--train.max_steps=2", "--overwrite"]) == 0
    assert "done: 2 steps" in capsys.readouterr().out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
