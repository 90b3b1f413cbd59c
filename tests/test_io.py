"""Atomic writes: the target is replaced whole or not at all, with the permissions of any new file."""

import os

import pytest

from csalic.errors import CsalicError
from csalic.io import atomic_path, atomic_write_json, atomic_write_text, read_json_object


def test_new_files_follow_the_umask_not_mkstemps_private_mode(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import csalic.io

        importlib.reload(csalic.io)
        csalic.io.atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644  # readable by the team, like results
    finally:
        os.umask(old)
        importlib.reload(csalic.io)


def test_failure_inside_the_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("killed mid-write")
    assert read_json_object(target, "result") == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_unwritable_destination_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CsalicError, match=r"^could not write .*file/out.txt") as e:
        atomic_write_text(tmp_path / "file" / "out.txt", "y")
    assert "\n" not in str(e.value)
