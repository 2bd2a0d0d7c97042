"""Content-addressed caching of node results, in memory and on disk.

A node's key is a fixed-size hash of (type, version, params, the keys of its
inputs, fingerprints of the files it reads) — never of its whole ancestry, so
keying a 10,000-node chain costs the same per node as keying a 10-node one.

* :class:`MemoryCache` keeps values as they are (tensors stay on the device)
  across runs in one process, least recently used first out.
* :class:`DiskCache` keeps values that can be stored safely — tensors as
  safetensors, plain data as JSON, never pickle — across processes. An entry is
  written into a temporary folder and renamed into place, so an interrupted run
  leaves either a whole entry or none; each entry carries a checksum, checked
  when it is read, so a damaged entry is deleted and recomputed, never used.
* The *ledger* remembers, per graph and node, what the last key was made of, so
  a run can say *why* a node ran ("param 'steps' changed: 300 -> 50").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .canonical import canonical_json
from .files import remove_stale_temps, temp_tag
from .types import JSON, TENSOR, PortType

CACHE_FORMAT = 3


class CacheDamaged(Exception):
    """A disk cache entry failed its checks; it has been deleted. The message says why."""


def make_key(parts: Any) -> str:
    """A 32-hex-digit key from any parts (stable across processes)."""
    return hashlib.blake2b(canonical_json(parts).encode(), digest_size=16).hexdigest()


def file_fingerprint(path: str) -> list[Any]:
    """Path, size and modification time: cheap, and changes when the file is edited."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
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


def _checksum(tensor_bytes: bytes, outputs: Any) -> str:
    """What an entry's meta.json promises: its tensor file's bytes and its outputs' description."""
    h = hashlib.blake2b(tensor_bytes, digest_size=16)
    h.update(canonical_json(outputs).encode())
    return h.hexdigest()


class DiskCache:
    """Values on disk under ``root/objects/KEY[:2]/KEY/``; see the module docstring.

    Each entry's ``meta.json`` holds a checksum of the entry. Reading verifies it:
    a truncated, edited or bit-flipped entry raises :class:`CacheDamaged` and is
    deleted, so the node is recomputed instead of failing every later run.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._swept = False

    def _dir(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    def _sweep(self) -> None:
        """Remove what killed processes left half-written (once per process, before the first write)."""
        if self._swept:
            return
        self._swept = True
        remove_stale_temps(self.root / "runs")
        with contextlib.suppress(OSError):
            for shard in os.scandir(self.root / "objects"):
                if shard.is_dir(follow_symlinks=False):
                    remove_stale_temps(Path(shard.path))

    def put(self, key: str, node_type: str, values: dict[str, Any], types: dict[str, PortType]) -> bool:
        """Store ``values``; False (and nothing written) when they cannot be stored safely."""
        if not storable(values, types):
            return False
        final = self._dir(key)
        if final.exists():
            return True
        self._sweep()
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}{temp_tag()}", dir=final.parent))
        try:
            outputs: dict[str, Any] = {}
            tensors: dict[str, Any] = {}
            for name, value in values.items():
                if types[name].codec == JSON:
                    outputs[name] = {"codec": JSON, "value": value}
                elif isinstance(value, (list, tuple)):
                    keys = [f"{name}.{i}" for i in range(len(value))]
                    tensors.update(dict(zip(keys, value, strict=True)))
                    outputs[name] = {"codec": TENSOR, "list": keys}
                else:
                    tensors[name] = value
                    outputs[name] = {"codec": TENSOR}
            blob = b""
            if tensors:
                from safetensors.torch import save

                blob = save({k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()})
                (tmp / "tensors.safetensors").write_bytes(blob)
            meta = {
                "format": CACHE_FORMAT,
                "node_type": node_type,
                "outputs": outputs,
                "checksum": _checksum(blob, outputs),
            }
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
        """Load an entry onto ``device``; None when there is none.

        Raises :class:`CacheDamaged` (after deleting the entry) when it fails its checks.
        """
        folder = self._dir(key)
        try:
            text = (folder / "meta.json").read_bytes()
        except FileNotFoundError:
            if folder.exists():  # a folder without its meta: damaged
                self.discard(key)
                raise CacheDamaged("its meta.json is missing") from None
            return None
        except OSError as exc:
            self.discard(key)
            raise CacheDamaged(f"its meta.json cannot be read ({exc.strerror})") from None
        try:
            return self._decode(folder, text, device)
        except CacheDamaged:
            self.discard(key)
            raise
        except Exception as exc:  # anything the checks above missed is damage too, never a crash
            self.discard(key)
            raise CacheDamaged(f"it cannot be decoded ({type(exc).__name__}: {exc})") from None

    def _decode(self, folder: Path, text: bytes, device: str) -> dict[str, Any]:
        try:
            meta = json.loads(text)
        except ValueError:
            raise CacheDamaged("its meta.json is not valid JSON (truncated?)") from None
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
            raise CacheDamaged("its meta.json is from another artgraph version or edited")
        outputs, checksum = meta.get("outputs"), meta.get("checksum")
        if not isinstance(outputs, dict) or not isinstance(checksum, str):
            raise CacheDamaged("its meta.json lacks outputs or checksum")
        try:
            blob = (folder / "tensors.safetensors").read_bytes()
        except FileNotFoundError:
            blob = b""
        if _checksum(blob, outputs) != checksum:
            raise CacheDamaged("checksum mismatch: the entry was truncated or changed on disk")
        tensors: dict[str, Any] = {}
        if blob:
            from safetensors.torch import load

            tensors = {k: v.to(device) for k, v in load(blob).items()}
        out: dict[str, Any] = {}
        for name, entry in outputs.items():
            if entry["codec"] == JSON:
                out[name] = entry["value"]
            elif "list" in entry:
                out[name] = [tensors[k] for k in entry["list"]]
            else:
                out[name] = tensors[name]
        return out

    def discard(self, key: str) -> None:
        """Delete an entry (a damaged one, so that the next run stores a good one)."""
        shutil.rmtree(self._dir(key), ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.root / "objects", ignore_errors=True)
        shutil.rmtree(self.root / "runs", ignore_errors=True)

    # -- ledger --------------------------------------------------------------

    def load_ledger(self, graph_id: str) -> dict[str, Any]:
        """What each node's last key was made of; empty when missing or damaged."""
        try:
            ledger = json.loads(self._ledger_path(graph_id).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(ledger, dict):
            return {}
        return {k: v for k, v in ledger.items() if isinstance(v, dict)}

    def save_ledger(self, graph_id: str, ledger: dict[str, Any]) -> None:
        path = self._ledger_path(graph_id)
        self._sweep()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".ledger{temp_tag()}", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(canonical_json(ledger))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

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

    def get(self, key: str, device: str) -> dict[str, Any] | None:
        """The values of ``key`` from memory, else from disk; :class:`CacheDamaged` when
        the disk entry was damaged (it is gone then, so the caller recomputes)."""
        return self.lookup(key, device)[0]

    def lookup(self, key: str, device: str) -> tuple[dict[str, Any] | None, bool]:
        """Like :meth:`get`, and whether the values came from disk (for the run report)."""
        found = self.memory.get(key)
        if found is not None or self.disk is None:
            return found, False
        found = self.disk.get(key, device)
        if found is not None:
            self.memory.put(key, found)
        return found, found is not None

    def put(self, key: str, node_type: str, values: dict[str, Any], types: dict[str, PortType]) -> None:
        """Keep ``values``; an error writing the disk copy propagates (the memory copy stays)."""
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
