"""rascore.atomic.write_atomic: the whole new file or the old one, never a temporary left behind."""

from __future__ import annotations

import pytest

from rascore.atomic import write_atomic


def test_bytes_and_writer_functions_land_whole(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"  # missing folders are made
    assert write_atomic(target, b"first") == target
    assert target.read_bytes() == b"first"
    write_atomic(target, lambda handle: handle.write(b"second"), fsync=False)
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_an_error_while_writing_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "card.md"
    write_atomic(target, b"old")

    def fails(handle):
        handle.write(b"half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(target, fails, prefix=".tmp-", suffix=".part")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["card.md"]
