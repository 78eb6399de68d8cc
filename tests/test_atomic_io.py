"""Atomic writes: the old file survives a failed write and no temp file is left behind."""

from __future__ import annotations

import pytest

from empo_gym.atomic_io import atomic_path, write_json_atomic, write_text_atomic


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "sub" / "f.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_json_round_trip(tmp_path) -> None:
    write_json_atomic(tmp_path / "x.json", {"é": [1, 2]}, ensure_ascii=False)
    assert (tmp_path / "x.json").read_text(encoding="utf-8") == '{"é": [1, 2]}'
