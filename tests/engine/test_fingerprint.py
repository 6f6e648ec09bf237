"""Content fingerprints of data: BLAKE3 of the bytes, folders by relative path, and a stat-keyed index.

The index is what makes an unchanged input cheap: a file whose (path, size, mtime) is known is not read again.
The tests prove "not read again" without any mock: they change a file's bytes behind the index's back (same
size, mtime put back) and show that the old digest comes back, then show that any real change is seen.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import blake3
import pytest

from forgeline.engine.fingerprint import LARGE_FILE_BYTES, Fingerprinter, MemoryContentIndex, combine
from forgeline.errors import ArtifactNotFoundError
from forgeline.store.metadata.sql_store import SqlMetadataStore

AN_HOUR_AGO_NS = (time.time_ns() - 3600 * 10**9)


def write(path: Path, data: bytes, mtime_ns: int | None = AN_HOUR_AGO_NS) -> Path:
    """Write a file and (by default) date it an hour back, like a data set that was not just produced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def swap_bytes_keeping_stat(path: Path, data: bytes) -> None:
    """Replace a file's bytes with as many other bytes and put its mtime back: invisible to a stat check."""
    before = path.stat()
    assert len(data) == before.st_size
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_file_digest_is_the_blake3_of_its_bytes(tmp_path):
    small = write(tmp_path / "small.csv", b"a,b\n1,2\n")
    assert Fingerprinter().fingerprint(str(small)) == blake3.blake3(b"a,b\n1,2\n").hexdigest()


def test_a_large_file_is_hashed_to_the_same_blake3(tmp_path):
    data = os.urandom(1024) * (LARGE_FILE_BYTES // 1024 + 7)  # over the memory-mapped, multi-threaded threshold
    large = write(tmp_path / "large.bin", data)
    assert Fingerprinter().fingerprint(str(large)) == blake3.blake3(data).hexdigest()


def test_file_urls_and_plain_paths_agree(tmp_path):
    path = write(tmp_path / "x.txt", b"same")
    assert Fingerprinter().fingerprint(f"file://{path}") == Fingerprinter().fingerprint(str(path))


def test_a_folder_digest_depends_on_contents_and_relative_names_not_on_where_it_lives(tmp_path):
    for root in ("one", "two"):
        write(tmp_path / root / "a.txt", b"alpha", mtime_ns=None)
        write(tmp_path / root / "sub" / "b.txt", b"beta", mtime_ns=None)
    fingerprinter = Fingerprinter()
    one, two = fingerprinter.fingerprint(str(tmp_path / "one")), fingerprinter.fingerprint(str(tmp_path / "two"))
    assert one == two  # an upload path is not content

    write(tmp_path / "two" / "sub" / "b.txt", b"betb", mtime_ns=None)  # one byte
    changed_byte = fingerprinter.fingerprint(str(tmp_path / "two"))
    assert changed_byte != one

    write(tmp_path / "two" / "sub" / "b.txt", b"beta", mtime_ns=None)
    (tmp_path / "two" / "sub" / "b.txt").rename(tmp_path / "two" / "sub" / "c.txt")
    renamed = fingerprinter.fingerprint(str(tmp_path / "two"))
    assert renamed not in (one, changed_byte)

    write(tmp_path / "two" / "sub" / "b.txt", b"beta", mtime_ns=None)
    added = fingerprinter.fingerprint(str(tmp_path / "two"))
    assert added not in (one, changed_byte, renamed)


def test_a_folder_is_not_the_same_as_the_file_it_holds(tmp_path):
    file = write(tmp_path / "alone.txt", b"content")
    write(tmp_path / "folder" / "alone.txt", b"content")
    fingerprinter = Fingerprinter()
    assert fingerprinter.fingerprint(str(file)) != fingerprinter.fingerprint(str(tmp_path / "folder"))


def test_combine_is_order_independent_and_name_sensitive():
    assert combine({"a": "1", "b": "2"}) == combine({"b": "2", "a": "1"})
    assert combine({"a": "1", "b": "2"}) != combine({"a": "2", "b": "1"})
    assert combine({"a": "1"}) != combine({"a": "1", "b": ""})


def test_a_missing_location_is_an_artifact_not_found_error(tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        Fingerprinter().fingerprint(str(tmp_path / "nowhere.csv"))


def test_an_unchanged_file_is_not_read_again(tmp_path):
    path = write(tmp_path / "data.bin", b"A" * 4096)
    fingerprinter = Fingerprinter()
    first = fingerprinter.fingerprint(str(path))

    swap_bytes_keeping_stat(path, b"B" * 4096)

    assert fingerprinter.fingerprint(str(path)) == first  # the index answered: the bytes were not read


def test_the_index_outlives_the_process_when_it_is_the_metadata_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    path = write(tmp_path / "data.bin", b"A" * 4096)
    writer = SqlMetadataStore(url)
    first = Fingerprinter(writer).fingerprint(str(path))
    writer.close()

    swap_bytes_keeping_stat(path, b"B" * 4096)

    reader = SqlMetadataStore(url)  # a later orchestrator: a new process, a new connection
    try:
        assert Fingerprinter(reader).fingerprint(str(path)) == first
        entry = reader.lookup_content([str(path)])[str(path)]
        assert (entry.size, entry.version, entry.digest) == (4096, str(AN_HOUR_AGO_NS), first)
    finally:
        reader.close()


def test_a_rewrite_of_the_same_size_is_seen(tmp_path):
    path = write(tmp_path / "data.bin", b"A" * 4096)
    fingerprinter = Fingerprinter()
    first = fingerprinter.fingerprint(str(path))

    write(path, b"B" * 4096, mtime_ns=AN_HOUR_AGO_NS + 1)  # same path and size, one nanosecond later

    assert fingerprinter.fingerprint(str(path)) == blake3.blake3(b"B" * 4096).hexdigest() != first


def test_a_file_rewritten_within_one_timestamp_tick_is_not_a_false_hit(tmp_path):
    # File systems stamp mtimes with a coarse clock (a jiffy on Linux, 1-2 s elsewhere): a file written,
    # fingerprinted and rewritten with as many bytes within one tick keeps its (size, mtime). An index
    # entry taken while the file may still change within its tick must not be trusted later.
    now_ns = time.time_ns()
    path = write(tmp_path / "fresh.csv", b"x,1\n", mtime_ns=now_ns)
    fingerprinter = Fingerprinter()
    assert fingerprinter.fingerprint(str(path)) == blake3.blake3(b"x,1\n").hexdigest()

    write(path, b"x,2\n", mtime_ns=now_ns)  # the same tick: size and mtime are unchanged

    assert fingerprinter.fingerprint(str(path)) == blake3.blake3(b"x,2\n").hexdigest()


def test_only_changed_files_of_a_folder_are_read_again(tmp_path):
    folder = tmp_path / "shards"
    for i in range(5):
        write(folder / f"{i}.bin", bytes([i]) * 1000)
    index = MemoryContentIndex()
    fingerprinter = Fingerprinter(index)
    fingerprinter.fingerprint(str(folder))
    assert len(index.entries) == 5

    swap_bytes_keeping_stat(folder / "0.bin", b"z" * 1000)  # not seen: stat unchanged
    write(folder / "1.bin", b"y" * 1000, mtime_ns=AN_HOUR_AGO_NS + 5)  # seen: mtime changed
    expected = {f"{i}.bin": blake3.blake3(bytes([i]) * 1000).hexdigest() for i in range(5)}
    expected["1.bin"] = blake3.blake3(b"y" * 1000).hexdigest()

    assert fingerprinter.fingerprint(str(folder)) == "dir:" + combine(expected)


def test_remote_urls_are_fingerprinted_by_content(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    base = f"/fingerprint-{os.getpid()}-{time.time_ns()}"
    fs.pipe_file(f"{base}/one/data.csv", b"a,b\n")
    fs.pipe_file(f"{base}/two/data.csv", b"a,b\n")
    fingerprinter = Fingerprinter()
    one = fingerprinter.fingerprint(f"memory://{base}/one")
    assert one == fingerprinter.fingerprint(f"memory://{base}/two")
    assert fingerprinter.fingerprint(f"memory://{base}/one/data.csv") == blake3.blake3(b"a,b\n").hexdigest()

    fs.pipe_file(f"{base}/two/data.csv", b"a,c\n")
    assert fingerprinter.fingerprint(f"memory://{base}/two") != one
    with pytest.raises(ArtifactNotFoundError):
        fingerprinter.fingerprint(f"memory://{base}/three")
