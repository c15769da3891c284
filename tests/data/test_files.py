"""One-line errors for the paths users give, whatever characters they hold."""

from __future__ import annotations

import pytest

from rnnkit.data.files import check_file, read_text
from rnnkit.errors import UserError


@pytest.mark.parametrize("name", ["data/0\n1", "a\rb", "tab\there", "plain.csv"])
def test_a_missing_file_is_named_on_one_line(tmp_path, name) -> None:
    with pytest.raises(UserError) as err:
        check_file(tmp_path / name, what="audio file")
    msg = str(err.value)
    assert "\n" not in msg and "\r" not in msg and "not found" in msg
    assert (repr(str(tmp_path / name)) in msg) == (name != "plain.csv")


def test_a_directory_and_bad_text_are_one_line(tmp_path) -> None:
    d = tmp_path / "x\ny"
    d.mkdir()
    with pytest.raises(UserError, match="is a directory") as err:
        check_file(d)
    assert "\n" not in str(err.value)
    f = tmp_path / "bad\n.txt"
    f.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(UserError, match="not UTF-8") as err:
        read_text(f)
    assert "\n" not in str(err.value)
