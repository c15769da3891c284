"""Translation pipeline end to end on a tiny synthetic parallel corpus, data errors, multi30k."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from digit_corpus import EN, digit_corpus

from rnnkit import Translator, UserError
from rnnkit.cli import main
from rnnkit.translate import load_config
from rnnkit.translate.data import load_pairs
from rnnkit.translate.metrics import score

_corpus = digit_corpus  # 'two five .' -> 'zwei fünf .'


def _write_pair(tmp: Path, name: str, pairs, gz: bool = False) -> str:
    src, tgt = tmp / f"{name}.en", tmp / f"{name}.de"
    for path, side in ((src, 0), (tgt, 1)):
        text = "".join(p[side] + "\n" for p in pairs)
        if gz:
            path.write_bytes(gzip.compress(text.encode("utf-8")))
        else:
            path.write_text(text, encoding="utf-8")
    return f"{src},{tgt}"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # The machine is shared: one intra-op thread is several times faster than many here.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One CLI training run shared by the tests below (gzip training files)."""
    tmp = tmp_path_factory.mktemp("translate")
    data = _write_pair(tmp, "train", _corpus(600, 0), gz=True)
    dev = _write_pair(tmp, "dev", _corpus(40, 1))
    run = tmp / "run"
    rc = main(
        [
            "translate",
            "train",
            "--preset",
            "tiny",
            "--data",
            data,
            "--run-dir",
            str(run),
            "--data.val_source",
            dev,
            "--train.max_steps=300",
            "--train.eval_interval=150",
            "--data.batch_size=64",
            "--label_smoothing=0",
            "--model.attention=additive",  # the model tests cover multiplicative
            "--train.progress=none",
            "--train.plot=false",
        ]
    )
    assert rc == 0
    return run, dev


def test_cli_train_eval_predict(trained_run, tmp_path, capsys) -> None:
    run, dev = trained_run
    assert (run / "best" / "tokenizer.json").is_file()
    assert (run / "metrics.jsonl").is_file()
    assert main(["translate", "eval", "--checkpoint", str(run), "--data", dev, "--beam", "3"]) == 0
    out = capsys.readouterr().out
    assert "BLEU" in out and "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in out
    bleu = float(out.split("BLEU ")[1].split()[0])
    assert bleu > 60, out  # a word-by-word code is learnt well in 300 steps
    tr = Translator.load(run)
    assert main(["translate", "predict", "--checkpoint", str(run), "three one four ."]) == 0
    said = capsys.readouterr().out.strip()
    assert said == tr.translate(["three one four ."])[0] and said.startswith("drei")
    inp, outp, png = tmp_path / "in.txt", tmp_path / "out.txt", tmp_path / "att.png"
    inp.write_text("two .\nnine nine .\n", encoding="utf-8")
    assert (
        main(
            [
                "translate",
                "predict",
                "--checkpoint",
                str(run),
                "--input",
                str(inp),
                "--output",
                str(outp),
                "--beam",
                "1",
            ]
        )
        == 0
    )
    lines = outp.read_text(encoding="utf-8").splitlines()
    assert lines == tr.translate(["two .", "nine nine ."], beam=1)
    assert lines[0] == "zwei ."
    assert (
        main(
            [
                "translate",
                "predict",
                "--checkpoint",
                str(run),
                "five six .",
                "--plot-attention",
                str(png),
            ]
        )
        == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_load_identical_translations(trained_run, tmp_path) -> None:
    run, _ = trained_run
    tr = Translator.load(run)
    sentences = [p[0] for p in _corpus(20, 7)]
    before = tr.translate(sentences, beam=3)
    tr.save(tmp_path / "copy")
    again = Translator.load(tmp_path / "copy")
    assert again.translate(sentences, beam=3) == before
    assert again.translate(sentences, beam=1) == tr.translate(sentences, beam=1)
    src, tgt, w = tr.attention("one two .")
    assert w.shape == (len(tgt), len(src))
    torch.testing.assert_close(w.sum(-1), torch.ones(len(tgt)))


def test_python_api_fit_and_evaluate() -> None:
    cfg = load_config(
        preset="tiny", overrides=["train.max_steps=60", "train.progress=none", "train.plot=false"]
    )
    tr = Translator(cfg).fit(_corpus(200, 3), val_pairs=_corpus(10, 4))
    losses = tr.result_.losses
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10  # the loss falls
    m = tr.evaluate(_corpus(10, 5), beam=2)
    assert 0.0 <= m["bleu"] <= 100.0 and len(m["hypotheses"]) == 10
    with pytest.raises(UserError, match="sentence 2 is empty"):
        tr.translate(["one .", "  "])
    with pytest.raises(UserError, match="beam must be >= 1"):
        tr.translate(["one ."], beam=0)


def test_bleu_of_reference_against_itself_is_100() -> None:
    refs = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."]
    m = score(refs, refs)
    assert m["bleu"] == pytest.approx(100.0) and m["chrf"] == pytest.approx(100.0)
    assert score(["Ein Hund."], ["Zwei Katzen schlafen hier."])["bleu"] < 10


def test_data_errors_and_handling(tmp_path, capsys) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\ntwo\nthree\n", encoding="utf-8")
    b.write_text("eins\nzwei\n", encoding="utf-8")
    with pytest.raises(UserError, match="misaligned: .*a.txt has 3 lines but .*b.txt has 2"):
        load_pairs(f"{a},{b}")
    tsv = tmp_path / "p.tsv"
    tsv.write_text("one\teins\ntwo zwei\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 2 has 1 tab-separated columns"):
        load_pairs(str(tsv))
    with pytest.raises(UserError, match="neither multi30k"):
        load_pairs(str(tmp_path / "missing.tsv"))
    # empty lines and over-long pairs are dropped, with the counts printed
    pairs = _corpus(60, 9) + [("", "leer"), ("leer", " ")] + [(" ".join(EN) * 3, "lang")]
    cfg = load_config(
        preset="tiny",
        overrides=[
            "train.max_steps=2",
            "train.progress=none",
            "train.plot=false",
            "data.max_tokens=20",
        ],
    )
    Translator(cfg).fit(pairs, val_pairs=_corpus(4, 2))
    err = capsys.readouterr().err
    assert "dropped 2 training pairs with an empty side" in err
    assert "dropped 1 training pairs longer than data.max_tokens=20" in err


def test_cli_errors(tmp_path, capsys) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\ntwo\n", encoding="utf-8")
    b.write_text("eins\n", encoding="utf-8")
    assert main(["translate", "train", "--data", f"{a},{b}", "--run-dir", str(tmp_path)]) == 2
    assert "error: the files are misaligned" in capsys.readouterr().err
    assert main(["translate", "predict", "--checkpoint", str(tmp_path / "nope"), "hi"]) == 2
    assert "error: checkpoint directory" in capsys.readouterr().err
    assert main(["translate", "train", "--data", "multi30k", "--src", "fr"]) == 2
    assert "multi30k has languages en and de" in capsys.readouterr().err
    assert main(["translate", "train", "--data", "x.tsv", "--model.attention=dot"]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["translate", "train", "--model.atention=additive"])
    assert exc.value.code == 2
    assert "did you mean --model.attention" in capsys.readouterr().err


def test_cli_predict_errors(trained_run, tmp_path, capsys) -> None:
    run, _ = trained_run
    assert main(["translate", "predict", "--checkpoint", str(run)]) == 2
    assert "pass sentences as arguments or --input FILE" in capsys.readouterr().err
    assert main(["translate", "predict", "--checkpoint", str(run), "a .", "--beam", "0"]) == 2
    assert "beam must be >= 1" in capsys.readouterr().err
    f = tmp_path / "in.txt"
    f.write_text("one .\n\ntwo .\n", encoding="utf-8")
    assert main(["translate", "predict", "--checkpoint", str(run), "--input", str(f)]) == 0
    out, err = capsys.readouterr()
    assert "1 blank input sentence(s) (first: sentence 2) give blank output lines" in err
    lines = out.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == "" and lines[0] and lines[2]  # line i -> line i


def test_help(capsys) -> None:
    for verb in ("train", "eval", "predict"):
        with pytest.raises(SystemExit) as exc:
            main(["translate", verb, "--help"])
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--plot-attention" in out and "--model.attention" in out and "--beam" in out


def test_multi30k_download_both_directions(data_mirror) -> None:
    en_de = load_pairs("multi30k", src_lang="en", tgt_lang="de")
    assert len(en_de) == 29000
    assert en_de[0].src.startswith("Two young, White males are outside")
    de_en = load_pairs("multi30k:val", src_lang="de", tgt_lang="en")
    assert len(de_en) == 1014
    val = load_pairs("multi30k", src_lang="en", tgt_lang="de", split="val")
    assert [(p.tgt, p.src) for p in de_en] == [tuple(p) for p in val]


def test_cli_resume_continues_from_the_last_checkpoint(tmp_path, capsys) -> None:
    import json

    data = _write_pair(tmp_path, "train", _corpus(60, 3))
    dev = _write_pair(tmp_path, "dev", _corpus(10, 4))
    run = tmp_path / "run"
    base = ["translate", "train", "--preset", "tiny", "--data", data, "--run-dir", str(run),
            "--data.val_source", dev, "--train.eval_interval=2", "--data.batch_size=16",
            "--train.progress=none", "--train.plot=false"]  # fmt: skip
    assert main([*base, "--train.max_steps=2"]) == 0
    assert "done: 2 steps" in capsys.readouterr().out
    # The saved config is used: the data and options need not be given again.
    assert main(["translate", "train", "--run-dir", str(run), "--resume",
                 "--train.max_steps=4"]) == 0  # fmt: skip
    assert "done: 4 steps" in capsys.readouterr().out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
