"""Labelled-text readers, built-in datasets, splits, labels and length-bucketed batches."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rnnkit.data.download import cache_dir
from rnnkit.data.tokenizers import PAD_ID
from rnnkit.errors import UserError
from rnnkit.sentiment import readers
from rnnkit.sentiment.config import SentimentDataConfig
from rnnkit.sentiment.data import (
    BucketBatches,
    LabelEncoder,
    collate,
    eval_examples,
    fit_data,
    prepare_examples,
)
from rnnkit.sentiment.readers import iter_imdb_tar, read_examples, read_texts

# --------------------------------------------------------------------------- built-in data


def test_sst2_downloads_through_fetch_and_matches_its_readme(data_mirror):
    train = list(read_examples("sst2"))
    dev = list(read_examples("sst2:dev"))
    assert len(train) == 6920 and len(dev) == 872  # README: 6,920 / 872
    assert Counter(e.label for e in train) == {1: 3610, 0: 3310}
    assert Counter(e.label for e in dev) == {1: 444, 0: 428}
    assert all(e.text.strip() for e in train + dev)
    cached = cache_dir() / "sst2" / "train.tsv"
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert digest == "5b56af66a194e685c0fbde5f58c4355ab00f5485a29bfcae1085b4b9f8b1a6c3"


def test_sst2_phrases_download_through_fetch_and_match_their_readme(data_mirror):
    """GLUE's phrase-level training set: 67,349 phrases (README: 37,569 / 29,780), the
    trailing space before the tab removed, none of them a dev sentence; dev is sst2:dev."""
    train = list(read_examples("sst2-phrases"))
    assert len(train) == 67349
    assert Counter(e.label for e in train) == {1: 37569, 0: 29780}
    assert train[0] == ("hide new secretions from the parental units", 0, 2)
    assert all(e.text == e.text.strip() and e.text for e in train)
    dev = list(read_examples("sst2-phrases:dev"))
    assert dev == list(read_examples("sst2:dev"))
    assert not {e.text for e in dev} & {e.text for e in train}
    cached = cache_dir() / "sst2_phrases" / "train.tsv"
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert digest == "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"
    cfg = SentimentDataConfig(source="sst2-phrases")
    tr, va = prepare_examples(cfg, seed=0)
    assert len(tr) == 67349 and len(va) == 872  # validated on the dev sentences
    assert eval_examples(cfg)[1] == dev  # evaluated on the dev sentences too


def _tiny_imdb(path: Path) -> dict[str, str]:
    reviews = {
        "train/pos/0_9.txt": "A wonderful film.<br /><br />Loved it.",
        "train/neg/1_2.txt": "Dreadful. Not one good scene.",
        "train/unsup/2_0.txt": "unlabelled, must be skipped",
        "test/pos/3_8.txt": "Great fun.",
        "test/neg/4_1.txt": "Boring and long.",
        "README": "not a review",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in reviews.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return reviews


def test_imdb_reader_streams_a_tarball_by_split(tmp_path: Path):
    tar = tmp_path / "aclImdb_v1.tar.gz"
    _tiny_imdb(tar)
    train = list(iter_imdb_tar(tar, "train"))
    assert [(e.text, e.label) for e in train] == [
        ("A wonderful film.  Loved it.", "pos"),  # <br /> tags become spaces
        ("Dreadful. Not one good scene.", "neg"),
    ]
    assert {e.label for e in iter_imdb_tar(tar, "test")} == {"pos", "neg"}
    with pytest.raises(UserError, match="splits train and test"):
        list(iter_imdb_tar(tar, "unsup"))
    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes(tar.read_bytes()[:60])
    with pytest.raises(UserError, match="not a readable IMDB archive.*downloaded again"):
        list(iter_imdb_tar(bad))


def test_imdb_builtin_reads_the_cached_archive(monkeypatch: pytest.MonkeyPatch):
    # The 84 MB archive is never downloaded here: a tiny one is put where fetch caches it,
    # and its checksum stands in for the real one (fetch verifies cached files).
    target = cache_dir() / "imdb" / "aclImdb_v1.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    _tiny_imdb(target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    monkeypatch.setattr(readers, "IMDB", replace(readers.IMDB, sha256=digest))
    try:
        assert [e.label for e in read_examples("imdb:test")] == ["pos", "neg"]
    finally:
        target.unlink()


# --------------------------------------------------------------------------- files


def test_csv_tsv_jsonl_with_configurable_columns(tmp_path: Path):
    (tmp_path / "a.csv").write_text('review,y\n"good, really",1\nbad,0\n', encoding="utf-8")
    (tmp_path / "a.tsv").write_text("y\treview\npos\tgood\nneg\tbad\n", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"review": "good", "y": 1}) + "\n\n" + json.dumps({"review": "bad", "y": 0}),
        encoding="utf-8",
    )
    kw = {"text_column": "review", "label_column": "y"}
    csv_ex = list(read_examples(tmp_path / "a.csv", **kw))
    assert [(e.text, e.label, e.line) for e in csv_ex] == [("good, really", 1, 2), ("bad", 0, 3)]
    assert [e.label for e in read_examples(tmp_path / "a.tsv", **kw)] == ["pos", "neg"]
    assert [e.label for e in read_examples(tmp_path / "a.jsonl", **kw)] == [1, 0]
    assert read_texts(tmp_path / "a.csv", text_column="review") == ["good, really", "bad"]
    (tmp_path / "t.txt").write_text("first text\n\nsecond\n", encoding="utf-8")
    assert read_texts(tmp_path / "t.txt") == ["first text", "", "second"]  # one per line


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "sentence,label\nhi,1\n", r"no text column 'text' \(columns: 'sentence', "),
        ("a.csv", "text,target\nhi,1\n", "no label column 'label'.*--data.label_column"),
        ("a.tsv", "text\tlabel\ngood\t1\n  \t0\n", r"a.tsv, line 3: the text is empty"),
        ("a.csv", "text,label\ngood,\n", r"line 2: the label is empty"),
        ("a.jsonl", '{"text": "x", "label": 1}\n{"text": ', r"line 2: not valid JSON"),
        ("a.jsonl", '{"text": "x", "label": 1.5}\n', "line 1: label 1.5 is not a whole number"),
        ("a.jsonl", '{"text": "x", "label": true}\n', "must be a class name or a whole number"),
        ("a.xlsx", "text,label\n", "cannot tell the format"),
        ("a.csv", "", "is empty"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, name: str, content: str, message: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message) as exc:
        list(read_examples(path))
    assert "\n" not in str(exc.value)


def test_non_utf8_file_and_missing_file(tmp_path: Path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9 cr\xe8me,1\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8 text .*convert it to UTF-8"):
        list(read_examples(path))
    with pytest.raises(UserError, match="not found.*built-in datasets: sst2, sst2-phrases, imdb"):
        list(read_examples(tmp_path / "nope.csv"))


# --------------------------------------------------------------------------- labels, batches


def test_label_encoder_orders_and_rejects_unseen_labels():
    enc = LabelEncoder().fit([10, 2, 2, -1])
    assert enc.classes_ == [-1, 2, 10]  # numeric, not string, order
    assert enc.transform([2, 10, -1]) == [1, 2, 0]
    with pytest.raises(UserError, match=r"label 'neutral' in dev.tsv was not seen.*-1, 2, 10"):
        enc.transform(["neutral"], where="dev.tsv")
    with pytest.raises(UserError, match="labels mix names and numbers: 'pos' at label 2"):
        LabelEncoder().fit([1, "pos", 0])
    with pytest.raises(UserError, match="single class"):
        LabelEncoder().fit(["pos", "pos"])
    assert LabelEncoder.from_dict(enc.to_dict()).classes_ == enc.classes_


def test_collate_pads_and_rejects_empty_sequences():
    b = collate([[5, 6, 7], [8]], [1, 0])
    assert b.ids.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]]
    assert b.lengths.tolist() == [3, 1] and b.labels.tolist() == [1, 0]
    with pytest.raises(UserError, match="no tokens"):
        collate([[1], []])


def test_bucket_batches_cover_each_example_once_and_reduce_padding():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (500,), generator=g).tolist()
    ids = [[2] * n for n in lengths]
    labels = list(range(500))
    bb = BucketBatches(ids, labels, 16, seed=3, pool_batches=10)
    seen = sorted(i for b in bb for i in b.labels.tolist())
    assert seen == labels  # every example once per epoch
    first = [b.labels.tolist() for b in bb]
    assert first == [b.labels.tolist() for b in bb]  # deterministic per epoch
    assert [b.labels.tolist() for b in bb.iter_from(5)] == first[5:]  # resume position
    bb.set_epoch(1)
    assert [b.labels.tolist() for b in bb] != first
    padded = sum(b.ids.numel() for b in bb)
    shuffled = BucketBatches(ids, labels, 16, seed=3, pool_batches=1)  # pools of one batch
    assert padded < 0.8 * sum(b.ids.numel() for b in shuffled)
    ev = BucketBatches(ids, None, 16, shuffle=False)
    assert all(int(b.lengths.max()) - int(b.lengths.min()) <= 3 for b in ev)
    order = torch.cat(ev.batch_indices())
    assert sorted(order.tolist()) == list(range(500))


# --------------------------------------------------------------------------- splits


def test_splits_of_a_file_and_of_texts_passed_to_fit(tmp_path: Path):
    rows = [f"text number {i}\t{i % 2}" for i in range(20)]
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    cfg = SentimentDataConfig(source=str(path), val_fraction=0.25)
    train, val = prepare_examples(cfg, seed=3)
    assert len(train) == 15 and len(val) == 5
    assert {e.text for e in train} | {e.text for e in val} == {r.split("\t")[0] for r in rows}
    assert prepare_examples(cfg, seed=3) == (train, val)  # seeded
    (texts, labels, vt, vl), where = fit_data(cfg, None, None, None, None, seed=3)
    assert vt == [e.text for e in val] and where.startswith("a seeded 0.25 of")
    texts = [f"t{i}" for i in range(10)]
    (tr, trl, vt, vl), where = fit_data(cfg, texts, [0, 1] * 5, None, None, seed=1)
    assert len(vt) == 2 and sorted(tr + vt) == sorted(texts) and "held out" in where
    with pytest.raises(UserError, match="3 texts but 2 labels"):
        fit_data(cfg, ["a", "b", "c"], [0, 1], None, None, seed=1)
    with pytest.raises(UserError, match="given together"):
        fit_data(cfg, ["a", "b"], [0, 1], ["c"], None, seed=1)
    with pytest.raises(UserError, match="has no dev split"):
        eval_examples(cfg)
    name, ex = eval_examples(cfg, str(path))
    assert name == str(path) and len(ex) == 20
    with pytest.raises(UserError, match="val_fraction must be in"):
        prepare_examples(SentimentDataConfig(source=str(path), val_fraction=1.5), seed=1)
