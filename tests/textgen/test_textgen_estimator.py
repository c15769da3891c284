"""TextGenerator and the estimator contract: construction, fit -> self, predict, evaluate,
save -> load, NotFittedError, the run-directory policy, old folders, and the CLI's --json."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from rnnkit import NotFittedError, TextGenerator, UserError
from rnnkit.cli import main as cli_main
from rnnkit.textgen import TextgenConfig

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 12
TINY = dict(
    preset="tiny",
    max_steps=6,
    eval_interval=3,
    batch_size=4,
    seq_len=16,
    hidden_size=16,
    embed_dim=8,
    plot=False,
    verbose=False,
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextGenerator, Path]:
    run = tmp_path_factory.mktemp("tg") / "run"
    return TextGenerator(**TINY).fit(TEXT, run_dir=run), run


def test_construct_from_a_preset_with_overrides():
    gen = TextGenerator(preset="tiny", max_steps=50, model__hidden_size=32, seed=3)
    assert isinstance(gen.config, TextgenConfig)
    assert gen.config.train.max_steps == 50 and gen.config.model.hidden_size == 32
    assert gen.config.model.num_layers == 1  # from the preset
    assert gen.seed == 3 and "max_steps=50" in repr(gen)
    with pytest.raises(UserError, match="unknown option hiden_size"):
        TextGenerator(hiden_size=3)


def test_fit_returns_self_with_fitted_attributes(fitted):
    gen, run = fitted
    assert gen.model_ is not None and not gen.model_.training
    assert len(gen.vocab_) == len(set(TEXT))
    assert gen.config.model.vocab_size == len(gen.vocab_)
    assert [e["step"] for e in gen.history_] == [3, 6]
    assert gen.result_.step == 6
    m = gen.metrics_
    assert set(m) == {"loss", "bits_per_char", "perplexity", "measured_on"}
    assert all(isinstance(m[k], float) for k in ("loss", "bits_per_char", "perplexity"))
    assert m["measured_on"] == "the last 10% of the text passed to fit (validation split)"
    best = json.loads((run / "best" / "best.json").read_text())
    assert m["loss"] == pytest.approx(best["val_loss"])  # the kept model is best/
    assert (run / "checkpoint" / "model.safetensors").is_file()


def test_fit_with_val_text_and_without_run_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gen = TextGenerator(**TINY).fit(TEXT, val_text=TEXT[:300] + "Zq")
    assert gen.metrics_["measured_on"] == "val_text passed to fit (302 characters)"
    assert "Z" in gen.vocab_.chars_  # validation-only characters join the vocabulary
    assert list(tmp_path.iterdir()) == []


def test_fit_without_text_reads_data_source(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text(TEXT, encoding="utf-8")
    gen = TextGenerator(**TINY).set_params(source=str(f)).fit()
    assert str(f) in gen.metrics_["measured_on"]
    assert TextGenerator(**TINY).fit(f).vocab_.chars_ == gen.vocab_.chars_  # a Path is a file
    with pytest.raises(UserError, match=r"names a file or dataset; pass pathlib.Path"):
        TextGenerator(**TINY).fit(str(f))


def test_evaluate_returns_a_dict_of_floats(fitted):
    gen, _ = fitted
    m = gen.evaluate(TEXT, batch_size=4, seq_len=32)
    assert set(m) == {"loss", "bits_per_char", "perplexity", "characters"}
    assert m["bits_per_char"] == pytest.approx(m["loss"] / math.log(2))
    assert m["perplexity"] == pytest.approx(math.exp(m["loss"]))
    json.dumps(m)


def test_predict_is_generate_for_each_prompt(fitted):
    gen, _ = fitted
    out = gen.predict(["First", "All:"], length=20, temperature=0.8, seed=5)
    assert out == [gen.generate(p, 20, temperature=0.8, seed=5) for p in ("First", "All:")]
    assert gen.predict("First", length=5, temperature=0) == [
        gen.generate("First", 5, temperature=0)
    ]
    with pytest.raises(UserError, match="never saw in training"):
        gen.predict(["Zzz"], length=3)
    with pytest.raises(UserError, match="top_p must be in"):
        gen.stream("First", 3, top_p=0)  # checked at the call, not at the first character


def test_save_load_gives_identical_predictions(fitted, tmp_path):
    gen, run = fitted
    folder = gen.save(tmp_path / "model")
    assert {"config.json", "model.safetensors", "vocab.json", "manifest.json", "README.md"} <= {
        p.name for p in folder.iterdir()
    }
    for source in (folder, run):  # a saved folder, and a run directory (its best/)
        again = TextGenerator.load(source)
        assert again.predict(["First"], 30, seed=2) == gen.predict(["First"], 30, seed=2)
        assert again.evaluate(TEXT) == gen.evaluate(TEXT)
    assert TextGenerator.load(folder).metrics_["loss"] == pytest.approx(gen.metrics_["loss"])


def test_a_folder_written_before_manifests_still_loads(fitted, tmp_path):
    gen, run = fitted
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.json"):
        shutil.copy(run / "best" / name, old / name)
    assert TextGenerator.load(old).generate("First", 20, seed=1) == gen.generate(
        "First", 20, seed=1
    )


def test_unfitted_use_raises_not_fitted_error(tmp_path):
    gen = TextGenerator(preset="tiny")
    for call in (
        lambda: gen.generate("a", 3),
        lambda: gen.stream("a", 3),
        lambda: gen.predict(["a"]),
        lambda: gen.evaluate("abc"),
        lambda: gen.save(tmp_path / "m"),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


def test_a_run_dir_holding_a_run_is_refused_without_overwrite(fitted, tmp_path):
    _, run = fitted
    target = tmp_path / "run"
    shutil.copytree(run, target)
    with pytest.raises(UserError, match="already holds a run"):
        TextGenerator(**TINY).fit(TEXT, run_dir=target)
    gen = TextGenerator(**TINY, seed=7).fit(TEXT, run_dir=target, overwrite=True)
    assert gen.result_.step == 6


def test_cli_json_outputs_parse_and_predict_is_sample(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    args = ["--data", str(text), "--run-dir", str(run), "--preset", "tiny"]
    args += ["--data.batch_size=4", "--data.seq_len=16", "--model.hidden_size=16"]
    args += ["--train.max_steps=4", "--train.progress=none", "--train.plot=false"]
    assert cli_main(["textgen", "train", *args, "--json", str(tmp_path / "train.json")]) == 0
    train = json.loads((tmp_path / "train.json").read_text())
    assert set(train) == {"loss", "bits_per_char", "perplexity", "measured_on"}
    code = cli_main(["textgen", "train", *args])
    assert code == 2 and "already holds a run" in capsys.readouterr().err

    assert cli_main(["textgen", "eval", "--checkpoint", str(run), "--json", "-"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["data"] == f"{text} (validation split)" and m["characters"] > 0
    sample = ["--checkpoint", str(run), "--prompt", "First", "--length", "12", "--seed", "4"]
    assert cli_main(["textgen", "predict", *sample, "--json", str(tmp_path / "p.json")]) == 0
    streamed = capsys.readouterr().out
    assert cli_main(["textgen", "sample", *sample, "--json", "-"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["text"] + "\n" == streamed and len(record["text"]) == len("First") + 12
    assert json.loads((tmp_path / "p.json").read_text()) == record


def test_fit_takes_a_long_single_line_text() -> None:
    """A long text without newlines is text, not a file name (it used to raise ENAMETOOLONG)."""
    from rnnkit.textgen.estimator import _read_text

    text = "the cat sat on the mat. " * 400
    assert _read_text(text, "text") == text
