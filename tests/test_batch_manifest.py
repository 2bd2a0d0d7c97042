"""The manifest: whole lines appended once each, a torn last line dropped, the last record wins, one writer."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from artgraph.manifest import Manifest, ManifestBusy, read_manifest


def record(item: str, status: str = "done", attempts: int = 1) -> dict[str, object]:
    return {
        "item": item,
        "overrides": {"a.b": float("nan") if item == "odd" else 1},
        "status": status,
        "attempts": attempts,
        "seconds": 0.5,
        "worker": "local-0",
        "outputs": [f"{item}/x.png"],
        "error": None if status == "done" else "node 'a': boom",
    }


def test_records_are_whole_lines_and_the_last_one_of_an_item_counts(tmp_path):
    with Manifest(tmp_path) as manifest:
        manifest.append(record("one", "failed", 2))
        manifest.append(record("two"))
        manifest.append(record("odd"))  # a NaN is written as text: still valid JSON
    with Manifest(tmp_path) as manifest:
        assert manifest.status("one") == "failed" and manifest.status("two") == "done"
        assert manifest.status("three") is None
        manifest.append(record("one", "done", 1))
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["item"] for line in lines)
    assert list(json.loads(lines[0])) == [
        "item",
        "overrides",
        "status",
        "attempts",
        "seconds",
        "worker",
        "outputs",
        "error",
    ]
    with Manifest(tmp_path) as manifest:
        assert manifest.status("one") == "done"


def test_a_line_cut_short_by_a_killed_run_is_dropped_and_the_item_runs_again(tmp_path):
    with Manifest(tmp_path) as manifest:
        manifest.append(record("kept"))
    path = tmp_path / "manifest.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"item": "torn", "status": "do')
    assert [r["item"] for r in read_manifest(path)] == ["kept"]  # a reader never sees the torn line
    with Manifest(tmp_path) as manifest:
        assert manifest.status("torn") is None and manifest.status("kept") == "done"
        manifest.append(record("next"))
    assert [r["item"] for r in read_manifest(path)] == ["kept", "next"]
    assert path.read_bytes().endswith(b"}\n")


def test_two_batches_cannot_write_one_manifest(tmp_path):
    first = Manifest(tmp_path)
    try:
        with pytest.raises(ManifestBusy, match="another 'artgraph batch' is writing"):
            Manifest(tmp_path)
    finally:
        first.close()
    Manifest(tmp_path).close()  # free again once the first is closed


def test_each_record_is_one_write_on_an_append_only_file(tmp_path, monkeypatch):
    writes: list[bytes] = []
    real = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real(fd, data)

    with Manifest(tmp_path) as manifest:
        monkeypatch.setattr(os, "write", spy)
        manifest.append(record("a"))
        manifest.append(record("b"))
        monkeypatch.setattr(os, "write", real)
        assert os.fstat(manifest._fd).st_size > 0
        assert os.O_APPEND & fcntl.fcntl(manifest._fd, fcntl.F_GETFL)
    assert len(writes) == 2 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
