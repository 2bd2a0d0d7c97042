"""Content-addressed caching of node results, in memory and on disk.

A node's key is a fixed-size hash of (type, version, params, the keys of its
inputs, fingerprints of the files it reads) — never of its whole ancestry, so
keying a 10,000-node chain costs the same per node as keying a 10-node one.

* :class:`MemoryCache` keeps values as they are (tensors stay on the device)
  across runs in one process, least recently used first out.
* :class:`DiskCache` keeps values that can be stored safely — tensors as
  safetensors, plain data as JSON, never pickle — across processes. An entry is
  written into a temporary folder and renamed into place, so an interrupted run
  leaves either a whole entry or none.
* The *ledger* remembers, per graph and node, what the last key was made of, so
  a run can say *why* a node ran ("param 'steps' changed: 300 -> 50").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .types import JSON, TENSOR, PortType

CACHE_FORMAT = 2


def make_key(parts: Any) -> str:
    """A 32-hex-digit key from JSON-able parts (stable across processes)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def file_fingerprint(path: str) -> list[Any]:
    """Path, size and modification time: cheap, and changes when the file is edited."""
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


class MemoryCache:
    """An LRU of ``key -> {output: value}``; values are kept as they are."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def get(self, key: str) -> dict[str, Any] | None:
        found = self._data.get(key)
        if found is not None:
            self._data.move_to_end(key)
        return found

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def put(self, key: str, values: dict[str, Any]) -> None:
        self._data[key] = values
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def storable(values: dict[str, Any], types: dict[str, PortType]) -> bool:
    """Whether every output can be written safely (no pickle) by :class:`DiskCache`."""
    for name, value in values.items():
        codec = types[name].codec
        if codec == JSON:
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                return False
        elif codec != TENSOR:
            return False
    return True


class DiskCache:
    """Values on disk under ``root/objects/KEY[:2]/KEY/``; see the module docstring."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    def has(self, key: str) -> bool:
        return (self._dir(key) / "meta.json").is_file()

    def put(self, key: str, node_type: str, values: dict[str, Any], types: dict[str, PortType]) -> bool:
        """Store ``values``; False (and nothing written) when they cannot be stored safely."""
        if not storable(values, types):
            return False
        final = self._dir(key)
        if final.exists():
            return True
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
        try:
            meta: dict[str, Any] = {"format": CACHE_FORMAT, "node_type": node_type, "outputs": {}}
            tensors: dict[str, Any] = {}
            for name, value in values.items():
                if types[name].codec == JSON:
                    meta["outputs"][name] = {"codec": JSON, "value": value}
                elif isinstance(value, (list, tuple)):
                    keys = [f"{name}.{i}" for i in range(len(value))]
                    tensors.update(dict(zip(keys, value, strict=True)))
                    meta["outputs"][name] = {"codec": TENSOR, "list": keys}
                else:
                    tensors[name] = value
                    meta["outputs"][name] = {"codec": TENSOR}
            if tensors:
                from safetensors.torch import save_file

                save_file(
                    {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()},
                    str(tmp / "tensors.safetensors"),
                )
            (tmp / "meta.json").write_text(json.dumps(meta))
            try:
                os.rename(tmp, final)
            except OSError:  # another process stored the same key first
                shutil.rmtree(tmp, ignore_errors=True)
            return True
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def get(self, key: str, device: str) -> dict[str, Any] | None:
        """Load an entry onto ``device``; None when missing or unreadable."""
        folder = self._dir(key)
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("format") != CACHE_FORMAT:
            return None
        tensors: dict[str, Any] = {}
        if (folder / "tensors.safetensors").exists():
            from safetensors.torch import load_file

            try:
                tensors = load_file(str(folder / "tensors.safetensors"), device=device)
            except Exception:
                return None
        out: dict[str, Any] = {}
        for name, entry in meta["outputs"].items():
            if entry["codec"] == JSON:
                out[name] = entry["value"]
            elif "list" in entry:
                out[name] = [tensors[k] for k in entry["list"]]
            else:
                out[name] = tensors[name]
        return out

    def clear(self) -> None:
        shutil.rmtree(self.root / "objects", ignore_errors=True)
        shutil.rmtree(self.root / "runs", ignore_errors=True)

    # -- ledger --------------------------------------------------------------

    def load_ledger(self, graph_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._ledger_path(graph_id).read_text())
        except (OSError, ValueError):
            return {}

    def save_ledger(self, graph_id: str, ledger: dict[str, Any]) -> None:
        path = self._ledger_path(graph_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ledger.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(ledger, fh)
        os.replace(tmp, path)

    def _ledger_path(self, graph_id: str) -> Path:
        return self.root / "runs" / f"{make_key(graph_id)}.json"


class Cache:
    """The cache a run uses: memory, optionally disk, and the why-did-it-run ledger."""

    def __init__(self, disk: str | os.PathLike[str] | None = None, max_entries: int = 4096) -> None:
        self.memory = MemoryCache(max_entries)
        self.disk = DiskCache(disk) if disk is not None else None
        self._ledgers: dict[str, dict[str, Any]] = {}

    def ledger(self, graph_id: str) -> dict[str, Any]:
        if graph_id not in self._ledgers:
            self._ledgers[graph_id] = self.disk.load_ledger(graph_id) if self.disk else {}
        return self._ledgers[graph_id]

    def save_ledger(self, graph_id: str) -> None:
        if self.disk is not None and graph_id in self._ledgers:
            self.disk.save_ledger(graph_id, self._ledgers[graph_id])

    def has(self, key: str) -> bool:
        return key in self.memory or (self.disk is not None and self.disk.has(key))

    def get(self, key: str, device: str) -> dict[str, Any] | None:
        found = self.memory.get(key)
        if found is None and self.disk is not None:
            found = self.disk.get(key, device)
            if found is not None:
                self.memory.put(key, found)
        return found

    def put(self, key: str, node_type: str, values: dict[str, Any], types: dict[str, PortType]) -> None:
        self.memory.put(key, values)
        if self.disk is not None:
            self.disk.put(key, node_type, values, types)


def default_cache_dir() -> Path:
    """``$ARTGRAPH_CACHE`` or the platform's user cache folder."""
    env = os.environ.get("ARTGRAPH_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("artgraph")) / "results"
