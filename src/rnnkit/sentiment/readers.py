"""Labelled text for classification: file readers and the built-in datasets.

Longer than 400 lines: every source a user can name is read here (files, SST-2 in both
spellings, IMDB's tarball), so one reader's checks and messages sit beside the others'.

Sources (:func:`read_examples`):

- a CSV (``.csv``), TSV (``.tsv``/``.tab``) or JSON-lines (``.jsonl``/``.ndjson``) file
  with a text column and a label column (names configurable). CSV/TSV files
  need a header row (a UTF-8 byte-order mark before it is removed); texts of
  any length. Labels are names or whole numbers, never a mix of both
  (:mod:`rnnkit.sentiment.labels`): ``1``, ``1.0`` and ``"1"`` are all class
  ``1``, so a model trained on a TSV and one trained on JSONL with 0/1 agree;
- ``sst2``: binary SST-2 sentences (train 6,920 / dev 872), downloaded from a
  pinned commit of its public mirror, sha256-checked and cached;
- ``sst2-phrases``: GLUE's phrase-level SST-2 training set (67,349 labelled
  phrases of the 6,920 training sentences, the sentences included; no dev
  sentence occurs in it), what most published recurrent SST-2 results train
  on; its dev split is SST-2's 872 dev sentences (``sst2-phrases:dev`` =
  ``sst2:dev``);
- ``imdb``: the 50,000 IMDB reviews of Maas et al. (2011), the official
  ``aclImdb_v1.tar.gz`` read as a stream (:func:`iter_imdb_tar`): reviews are
  yielded one at a time from the compressed tarball, never extracted to disk.

Bad input is a :class:`~rnnkit.errors.UserError` naming file, line and fix:
a missing column, an empty text, an empty label, labels mixing names and
numbers, a file that is not UTF-8, a directory or an unreadable file.
Labels, splits and batches are in :mod:`rnnkit.sentiment.data`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from rnnkit.data.download import RemoteFile, fetch
from rnnkit.data.files import check_file, read_text, split_lines
from rnnkit.errors import UserError
from rnnkit.sentiment.labels import normalize_labels

__all__ = [
    "COLUMN_OPTIONS",
    "DATASETS",
    "IMDB",
    "SST2_DEV",
    "SST2_DEV_SETS",
    "SST2_PHRASES",
    "phrase_tokens",
    "SST2_TRAIN",
    "Example",
    "iter_imdb_tar",
    "read_examples",
    "read_texts",
]

_SST2_COMMIT = "ca3869fa59a56d316e73b41074abcb0226886de8"
_SST2_BASE = f"https://raw.githubusercontent.com/YJiangcm/SST-2-sentiment-analysis/{_SST2_COMMIT}"
SST2_TRAIN = RemoteFile(
    url=f"{_SST2_BASE}/data/train.tsv",
    sha256="5b56af66a194e685c0fbde5f58c4355ab00f5485a29bfcae1085b4b9f8b1a6c3",
    mirror_path="sst2/train.tsv",
)
SST2_DEV = RemoteFile(
    url=f"{_SST2_BASE}/data/dev.tsv",
    sha256="c9ddb67ce3068540c5bb6562e1f34788302dd06d570e6ca0d5e61f7d5ef2bfad",
    mirror_path="sst2/dev.tsv",
)
# GLUE's SST-2/train.tsv (Wang et al. 2018), from a pinned commit of a public copy.
_PHRASES_COMMIT = "6288fb5bec9c572f2492875ae0111df5b6daed11"
SST2_PHRASES = RemoteFile(
    url=f"https://raw.githubusercontent.com/eyalbd2/Reproducing-AutoPrompt/{_PHRASES_COMMIT}"
    "/glue_data/SST-2/train_full.tsv",
    sha256="48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
    mirror_path="sst2_phrases/train.tsv",
)
# The official archive (84,125,825 bytes); the sha256 is the one published by
# TensorFlow Datasets and other loaders for this URL.
IMDB = RemoteFile(
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    mirror_path="imdb/aclImdb_v1.tar.gz",
)
# Built-in datasets by name, with their splits; the test split stays unused for IMDB
# training ("test" is read by ``eval --data imdb:test``).
DATASETS: dict[str, tuple[str, ...]] = {
    "sst2": ("train", "dev"),
    "sst2-phrases": ("train", "dev"),
    "imdb": ("train", "test"),
}
# Built-in datasets whose validation split is SST-2's dev sentences.
SST2_DEV_SETS = ("sst2", "sst2-phrases")


class Example(NamedTuple):
    """One labelled text; ``line`` is its 1-based line (record) number for error messages."""

    text: str
    label: Any
    line: int


# ---------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------


# SST-2's sentence file (sst2) and GLUE's phrase file (sst2-phrases) spell the same
# tokens differently; phrase_tokens maps both to one form. PTB brackets:
_BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}
# Words the phrase file splits (PTB style).
_SPLIT = {"gonna": ("gon", "na"), "wanna": ("wan", "na"), "gotta": ("got", "ta")}
# British spellings of the sentence file that the phrase file writes the American way.
_SPELLING = {
    "behaviour": "behavior",
    "centre": "center",
    "colour": "color",
    "coloured": "colored",
    "endeavour": "endeavor",
    "favour": "favor",
    "favourite": "favorite",
    "flavour": "flavor",
    "flavours": "flavors",
    "grey": "gray",
    "humour": "humor",
    "labelled": "labeled",
    "labour": "labor",
    "labours": "labors",
    "recognise": "recognize",
    "savour": "savor",
    "splendour": "splendor",
    "theatre": "theater",
    "theatres": "theaters",
}


def phrase_tokens(text: str) -> list[str]:
    """The tokens of an SST-2 sentence or phrase in one canonical form, so that a phrase
    occurs inside a sentence exactly when its tokens are a contiguous run of the
    sentence's.

    The sentence file (``sst2``) and the phrase file (``sst2-phrases``) tokenise alike
    but write some tokens differently: ``-lrb-``/``-rrb-`` vs ``(``/``)``, ``\\/`` vs
    ``/``, a ``###`` after numbers, ``gonna`` vs ``gon na``, ``et al.`` vs ``et al .``,
    ``. . .`` vs ``...`` and a few British spellings. With this form every one of the
    6,920 training sentences is a phrase of the phrase file (tested).
    """
    out: list[str] = []
    for tok in text.split():
        tok = _BRACKETS.get(tok, tok).replace("\\/", "/").replace("\\*", "*")
        if tok == "###":  # the sentence file's mark after a number
            continue
        if tok in _SPLIT:
            out.extend(_SPLIT[tok])
            continue
        end = tok.endswith(".") and tok.strip(".") != ""  # "al." -> "al", "."
        tok = tok[:-1] if end else tok
        if tok == "...":  # the phrase file's ellipsis; the sentence file writes ". . ."
            out.extend((".", ".", "."))
        else:
            out.append(_SPELLING.get(tok, tok))
        if end:
            out.append(".")
    return out


def _read_sst2(path: Path) -> Iterator[Example]:
    """``label<TAB>sentence`` lines, no header (the mirror's format), in the phrase file's
    spelling (:func:`phrase_tokens`): a model trained on GLUE's phrases then sees the
    dev sentences' brackets, slashes and contractions as it saw them in training."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            label, _, text = line.rstrip("\n").partition("\t")
            yield Example(" ".join(phrase_tokens(text)), int(label), i)


def _read_glue_phrases(path: Path) -> Iterator[Example]:
    """GLUE's ``sentence<TAB>label`` lines after a header; phrases keep GLUE's trailing space
    before the tab, removed here."""
    with open(path, encoding="utf-8") as f:
        next(f, None)  # the header: sentence<TAB>label
        for i, line in enumerate(f, 2):
            text, _, label = line.rstrip("\n").rpartition("\t")
            yield Example(text.strip(), int(label), i)


_IMDB_MEMBER = re.compile(r"^aclImdb/(train|test)/(pos|neg)/\d+_(\d+)\.txt$")


def iter_imdb_tar(path: str | os.PathLike[str], split: str = "train") -> Iterator[Example]:
    """Reviews of one split of ``aclImdb_v1.tar.gz``, streamed from the compressed archive.

    The archive is read front to back in tarfile's stream mode (``r|*``), so
    memory holds one review at a time and nothing is extracted to disk.
    Labels are ``"neg"``/``"pos"`` (from the directory); ``<br />`` tags in
    the reviews are replaced by spaces. ``line`` counts the yielded reviews.
    """
    if split not in ("train", "test"):
        raise UserError(f"imdb has the splits train and test, got {split!r}")
    n = 0
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                m = _IMDB_MEMBER.match(member.name)
                if not member.isfile() or m is None or m.group(1) != split:
                    continue
                f = tar.extractfile(member)
                if f is None:  # pragma: no cover - isfile() members always have data
                    continue
                text = f.read().decode("utf-8", errors="replace").replace("<br />", " ")
                n += 1
                yield Example(text, m.group(2), n)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(
            f"{path} is not a readable IMDB archive ({exc}); delete it so that it is downloaded "
            "again"
        ) from exc
    if n == 0:
        raise UserError(f"{path} has no reviews under aclImdb/{split}/pos or neg")


# Texts of 1 MB and more are fine (the csv module stops at 128 KB by default).
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))

# How a missing column is fixed, by default (the Python API and `rnnkit sentiment train`);
# the reading verbs pass their own options (predict: --text-column).
COLUMN_OPTIONS = {
    "text": "--data.text_column (Python: text_column=)",
    "label": "--data.label_column (Python: label_column=)",
}


def _table_rows(
    path: Path, delimiter: str, columns: dict[str, tuple[str, str]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a CSV/TSV file with a header; ``columns``: what -> (name, option to set it)."""
    text = read_text(path, what="data file")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = reader.fieldnames
        if header is None:
            raise UserError(f"{path} is empty; it needs a header row and labelled rows")
        for what, (name, option) in columns.items():
            if name not in header:
                cols = ", ".join(repr(c) for c in header)
                raise UserError(
                    f"{path} has no {what} column {name!r} (columns: {cols}); set {option} "
                    "to the right name"
                )
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise UserError(f"{path}, line {reader.line_num}: not valid CSV/TSV ({exc})") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, line in enumerate(split_lines(read_text(path, what="data file")), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            reason = (
                exc.msg
                if isinstance(exc, json.JSONDecodeError)
                else "nested too deeply"
                if isinstance(exc, RecursionError)
                else "a number too long to read"  # Python's 4300-digit limit
            )
            raise UserError(f"{path}, line {i}: not valid JSON ({reason})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}, line {i}: each line must be a JSON object")
        yield i, row


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise UserError(
        f"cannot tell the format of {path} from its extension; use .csv, .tsv or .jsonl "
        "(CSV/TSV with a header row)"
    )


def _rows(path: Path, columns: dict[str, tuple[str, str]]) -> Iterator[tuple[int, dict[str, Any]]]:
    fmt = _format_of(path)
    if fmt == "jsonl":
        return _jsonl_rows(path)
    return _table_rows(path, "," if fmt == "csv" else "\t", columns)


def _column(path: Path, line: int, row: dict[str, Any], what: str, column: tuple[str, str]) -> Any:
    name, option = column
    if name not in row:  # JSON lines: fields may differ from line to line
        fields = ", ".join(repr(c) for c in row if c is not None)
        raise UserError(
            f"{path}, line {line}: no {what} field {name!r} (fields: {fields}); add it, or set "
            f"{option} to the right name"
        )
    value = row[name]
    if value is None:  # a short CSV row, or JSON null
        raise UserError(f"{path}, line {line}: the row has no value in column {name!r}")
    return value


def _builtin(source: str, split: str | None) -> tuple[str, str]:
    name, _, sub = source.partition(":")
    splits = DATASETS[name]
    sub = sub or split or splits[0]
    if sub not in splits:
        raise UserError(f"{name} has the splits {', '.join(splits)}, got {sub!r}")
    return name, sub


def read_examples(
    source: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    split: str | None = None,
    require_labels: bool = True,
    allow_empty: bool = False,
    options: dict[str, str] | None = None,
) -> Iterator[Example]:
    """Labelled texts of a file or a built-in dataset (``sst2``, ``sst2:dev``,
    ``sst2-phrases``, ``imdb:test``).

    A generator over a list read at once (IMDB streams from its archive).
    Empty (whitespace-only) texts are errors naming the line, unless
    ``allow_empty`` (texts to predict: they come back as ``""``). Labels are
    classes (:func:`~rnnkit.sentiment.labels.normalize_labels`): ``1`` and
    ``1.0`` are one class, and a column mixing names and numbers is an error
    naming the rows. ``options``: how the caller sets each column
    (``{"text": "--text-column"}``), named when a column is missing.
    """
    name = str(source)
    if name.partition(":")[0] in DATASETS:
        ds, sub = _builtin(name, split)
        if ds == "sst2":
            yield from _read_sst2(fetch(SST2_TRAIN if sub == "train" else SST2_DEV))
        elif ds == "sst2-phrases":
            phrases = sub == "train"
            yield from (_read_glue_phrases if phrases else _read_sst2)(
                fetch(SST2_PHRASES if phrases else SST2_DEV)
            )
        else:
            yield from iter_imdb_tar(fetch(IMDB), sub)
        return
    path = check_file(
        name,
        what="data file",
        hint=f"pass a .csv/.tsv/.jsonl file or one of the built-in datasets: {', '.join(DATASETS)}",
    )
    opts = {**COLUMN_OPTIONS, **(options or {})}
    columns = {"text": (text_column, opts["text"])}
    if require_labels:
        columns["label"] = (label_column, opts["label"])
    examples: list[Example] = []
    for line, row in _rows(path, columns):
        text = _column(path, line, row, "text", columns["text"])
        if not isinstance(text, str):
            raise UserError(
                f"{path}, line {line}: the text must be a string, got {type(text).__name__} "
                f"{text!r}"
            )
        if not text.strip() and not allow_empty:
            raise UserError(
                f"{path}, line {line}: the text is empty; remove the row or fill in the text"
            )
        label: Any = None
        if require_labels:
            label = _column(path, line, row, "label", columns["label"])
        examples.append(Example(text if text.strip() else "", label, line))
    if not examples:
        raise UserError(f"{path} has no rows; it needs labelled texts")
    if require_labels:
        labels = normalize_labels(
            [e.label for e in examples], rows=[e.line for e in examples], source=str(path)
        )
        examples = [e._replace(label=y) for e, y in zip(examples, labels, strict=True)]
    yield from examples


def read_texts(
    source: str | os.PathLike[str], *, text_column: str = "text", option: str | None = None
) -> list[str]:
    """Texts to predict, one per line of a .txt file or per row of a CSV/TSV/JSONL file
    (its text column; other columns are ignored). A blank line or an empty text comes
    back as ``""``, so that output i always belongs to input i; the caller decides
    what an empty text gets. ``option``: how the caller sets the text column."""
    path = check_file(source, what="input file", hint="pass a .txt, .csv, .tsv or .jsonl file")
    if path.suffix.lower() == ".txt":
        lines = split_lines(read_text(path, what="input file"))
        if not lines:
            raise UserError(f"{path} has no texts; write one text per line")
        return [t if t.strip() else "" for t in lines]
    opts = {"text": option} if option else None
    examples = read_examples(
        path, text_column=text_column, require_labels=False, allow_empty=True, options=opts
    )
    return [e.text for e in examples]
