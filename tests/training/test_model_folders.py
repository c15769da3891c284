"""Saving never deletes what it did not write; loading verifies every file.

The faults are injected for real: files truncated, bytes flipped, files
removed, user files placed in the target, ``.`` as the target, a plain file
as the target, a run directory reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from rnnkit import UserError
from rnnkit.training import (
    check_run_dir,
    load_model_weights,
    resolve_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.GRU(3, 5, batch_first=True)


def _write(path: Path | str, seed: int = 0) -> Path:
    return write_checkpoint(
        path, model=_model(seed), config={"seed": seed}, extra_json={"v.json": [1]}
    )


def test_manifest_lists_every_file_with_size_and_sha256(tmp_path: Path) -> None:
    d = _write(tmp_path / "m")
    manifest = json.loads((d / "manifest.json").read_text())
    assert set(manifest["files"]) == {"config.json", "model.safetensors", "v.json"}
    assert manifest["format"] == "rnnkit" and manifest["format_version"] == 1
    for name, entry in manifest["files"].items():
        assert entry["size"] == (d / name).stat().st_size and len(entry["sha256"]) == 64
    assert verify_checkpoint(d) == manifest


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove", "append"])
@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "v.json"])
def test_damaged_files_are_a_one_line_error_naming_the_file(
    tmp_path: Path, damage: str, name: str
) -> None:
    d = _write(tmp_path / "m")
    f = d / name
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        mid = len(data) // 2
        f.write_bytes(data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :])
    elif damage == "remove":
        f.unlink()
    else:
        f.write_bytes(data + b"x")
    with pytest.raises(UserError, match=rf"^damaged: .*{name}") as info:
        resolve_checkpoint(d)
    assert "\n" not in str(info.value)


def test_truncated_safetensors_without_manifest_is_still_one_line(tmp_path: Path) -> None:
    d = _write(tmp_path / "m")
    (d / "manifest.json").unlink()  # as written by rnnkit 0.1
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[:100])
    with pytest.raises(UserError, match="damaged: .*model.safetensors is not a readable"):
        load_model_weights(_model(), resolve_checkpoint(d))


def test_folders_without_manifest_still_load(tmp_path: Path) -> None:
    d = _write(tmp_path / "m", seed=1)
    (d / "manifest.json").unlink()
    m = _model(0)
    load_model_weights(m, resolve_checkpoint(d))
    assert torch.equal(m.weight_hh_l0, _model(1).weight_hh_l0)


def test_save_refuses_a_folder_that_is_not_an_rnnkit_model(tmp_path: Path) -> None:
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("my notes")
    (d / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(
        UserError, match="not empty and is not an rnnkit model.*nothing was written"
    ):
        _write(d)
    assert sorted(p.name for p in d.iterdir()) == ["data.csv", "notes.txt"]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_save_over_an_earlier_model_keeps_the_users_files(tmp_path: Path) -> None:
    d = _write(tmp_path / "m", seed=0)
    (d / "notes.txt").write_text("keep me")
    _write(d, seed=1)
    assert (d / "notes.txt").read_text() == "keep me"
    m = _model(0)
    load_model_weights(m, resolve_checkpoint(d))
    assert torch.equal(m.weight_hh_l0, _model(1).weight_hh_l0)


def test_save_replaces_stale_files_of_the_earlier_save_only(tmp_path: Path) -> None:
    d = write_checkpoint(tmp_path / "m", model=_model(), extra_json={"old.json": 1})
    (d / "notes.txt").write_text("keep me")
    write_checkpoint(d, model=_model(), extra_json={"new.json": 2})
    names = {p.name for p in d.iterdir()}
    assert "old.json" not in names and {"new.json", "notes.txt"} <= names
    verify_checkpoint(d)


def test_save_into_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    _write(".")
    assert (work / "model.safetensors").is_file()
    _write(".", seed=2)  # again, over itself
    verify_checkpoint(work)


def test_save_refuses_a_plain_file(tmp_path: Path) -> None:
    f = tmp_path / "model"
    f.write_text("not a folder")
    with pytest.raises(UserError, match="is a file, not a directory"):
        _write(f)
    assert f.read_text() == "not a folder"
    assert not (tmp_path / "model.old").exists()


def test_leftovers_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / "m.tmp-999999999-abc"
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"partial")
    alive = tmp_path / f"m.tmp-{os.getpid()}-xyz"
    alive.mkdir()
    _write(tmp_path / "m")
    assert not dead.exists()
    assert alive.exists()  # a live writer's folder is left alone


def test_run_directory_policy(tmp_path: Path) -> None:
    run = tmp_path / "run"
    check_run_dir(run)  # new: fine
    _write(run / "best")
    (run / "metrics.jsonl").write_text("{}\n")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="already holds a run .*--resume .*--overwrite"):
        check_run_dir(run)
    with pytest.raises(UserError, match="holds no checkpoint/ to resume from"):
        check_run_dir(run, resume=True)
    with pytest.raises(UserError, match="contradict"):
        check_run_dir(run, resume=True, overwrite=True)
    check_run_dir(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        check_run_dir(f)
