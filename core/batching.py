"""``artgraph batch``: one graph over many items, on local worker processes or a Ray cluster.

The command and the Python API share :func:`batch`, which does everything that
can fail before work starts — expand and validate every item, make ``--out``
and take its manifest, start the executor — and returns a :class:`BatchRun`
that yields each item's result as it finishes, recording it in
``OUT/manifest.jsonl`` first. Items the manifest has as done are skipped; items
it has as failed too, unless ``retry_failed``. See docs/scaling.md.

Exit codes: 0 every item done, 1 some failed, 2 nothing ran (invalid items or
flags, ``--out`` not writable, workers or cluster out of reach), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batchitems import Item, normalise, validate
from .batchrun import BatchError, GraphSource, WorkerSetup, write_marker
from .errors import GraphError, Problem
from .manifest import DONE, FAILED, Manifest, ManifestBusy

if TYPE_CHECKING:
    from .api import Graph
    from .batchexec import Pool

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
EXECUTORS = ("local", "ray")


@dataclass
class ItemResult:
    """One finished item, as its manifest line says; ``folder`` holds its outputs and events."""

    item: str
    overrides: dict[str, Any]
    status: str
    attempts: int
    seconds: float | None
    worker: str
    outputs: list[str]
    error: str | None
    folder: Path = field(repr=False, default=Path())

    @property
    def ok(self) -> bool:
        return self.status == DONE

    def record(self) -> dict[str, Any]:
        """The manifest line."""
        out = asdict(self)
        out.pop("folder")
        return out


class BatchRun(Iterator[ItemResult]):
    """A batch under way: iterate for results as they finish (each already in the manifest).

    ``items``: every item of the batch; ``todo``: those this run does (the rest were
    done before, or failed before: ``skipped_failed``). ``workers``: what each worker
    said about itself (name, host, pid, device, GPUs). Close it (or exhaust it, or use
    ``with``) to stop the workers."""

    def __init__(
        self,
        items: list[Item],
        todo: list[Item],
        manifest: Manifest,
        pool: Pool | None,
        retries: int,
        out: Path,
        skipped_failed: list[str],
    ) -> None:
        from .batchexec import drive

        self.items, self.todo, self.manifest, self.pool, self.out = items, todo, manifest, pool, out
        self.skipped_failed = skipped_failed
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._run = drive(pool, todo, retries) if pool is not None else iter(())
        self._closed = False

    @property
    def workers(self) -> list[dict[str, Any]]:
        return list(getattr(self.pool, "workers", []))

    @property
    def finished(self) -> int:
        return self.done + self.failed

    def __iter__(self) -> BatchRun:
        return self

    def __next__(self) -> ItemResult:
        if self._closed:
            raise StopIteration
        try:
            item, outcome = next(self._run)
        except StopIteration:
            self.close()
            raise
        result = ItemResult(
            item=item.id,
            overrides=item.overrides,
            status=outcome["status"],
            attempts=int(outcome["attempts"]),
            seconds=outcome.get("seconds"),
            worker=str(outcome.get("worker", "")),
            outputs=list(outcome.get("outputs") or []),
            error=outcome.get("error"),
            folder=self.out / item.id,
        )
        self.manifest.append(result.record())
        if result.ok:
            self.done += 1
        else:
            self.failed += 1
        return result

    def close(self, *, now: bool = False) -> None:
        """Stop the workers (``now``: without waiting for their items) and release the manifest."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.pool is not None:
                self.pool.close(now=now)
        finally:
            self.manifest.close()

    def __enter__(self) -> BatchRun:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self.close(now=kind is not None)


def batch(
    graph: Graph | str | os.PathLike[str],
    items: Iterable[Mapping[str, Any] | Item],
    *,
    executor: str = "local",
    workers: int | None = None,
    out: str | os.PathLike[str] = "out",
    cache: str | os.PathLike[str] | bool = False,
    device: str = "auto",
    retries: int = 1,
    retry_failed: bool = False,
    address: str | None = None,
    threads: int | None = None,
) -> BatchRun:
    """Run ``graph`` once per item (a mapping of ``NODE.PARAM`` overrides), on ``workers``
    processes (``executor="local"``) or Ray actors (``"ray"``, joining ``address``).

    Every item is validated before anything runs (a :class:`GraphError` lists the
    problems); the run's results come as they finish::

        for result in artgraph.batch("style.yaml", [{"content.path": p} for p in photos], workers=2):
            print(result.item, result.status, result.outputs)

    ``cache``: a folder for a disk cache shared by the workers, or False (each worker
    still keeps its memory cache for its whole life); True: the user cache folder.
    ``threads``: PyTorch's CPU threads in each worker (default: the cores shared out).
    Relative paths given to params that read files are taken from the current directory.
    """
    from .api import load_graph
    from .arguments import folder_arg
    from .cache import default_cache_dir

    if executor not in EXECUTORS:
        raise BatchError(f"unknown executor '{executor}'", f"one of: {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise GraphError([Problem("--workers", None, None, f"--workers must be 1 or more, got {workers}")])
    if retries < 0:
        raise GraphError([Problem("--retries", None, None, f"--retries must be 0 or more, got {retries}")])
    if threads is not None and threads < 1:
        raise GraphError([Problem("--threads", None, None, f"--threads must be 1 or more, got {threads}")])
    if executor == "ray" and device.startswith("cuda:"):
        raise GraphError(
            [Problem("--device", None, None, "with --executor ray each actor has its own GPU", "use --device auto")]
        )
    _check_device(device, here=executor == "local")
    if executor == "ray":  # before anything is made: Ray must be there, and the cluster answer
        from .rayexec import check_address, import_ray

        import_ray()
        check_address(address)
    loaded = graph if not isinstance(graph, (str, os.PathLike)) else load_graph(graph, validate=False)
    source = GraphSource.of(loaded)
    folder = Path(os.path.abspath(out))
    checked = [normalise(loaded, it if isinstance(it, Item) else Item("", dict(it))) for it in items]
    if not checked:
        raise GraphError([Problem("batch", None, None, "no items", "give at least one set of overrides")])
    validate(loaded, checked, folder)
    folder_arg("--out", str(folder), create=True)
    disk: str | None
    if cache is True:
        disk = str(default_cache_dir())
    elif cache is False:
        disk = None
    else:
        disk = folder_arg("--cache", os.path.abspath(cache), create=True)
    try:
        manifest = Manifest(folder)
    except ManifestBusy as exc:
        raise BatchError(str(exc)) from None
    except OSError as exc:
        raise BatchError(f"cannot open the manifest in {folder}: {exc.strerror or exc}") from None
    try:
        todo, skipped_failed = [], []
        for item in checked:
            status = manifest.status(item.id)
            if status == DONE:
                continue
            if status == FAILED and not retry_failed:
                skipped_failed.append(item.id)
                continue
            todo.append(item)
        pool = _pool(executor, source, folder, device, disk, workers, address, threads) if todo else None
    except BaseException:
        manifest.close()
        raise
    return BatchRun(checked, todo, manifest, pool, retries, folder, skipped_failed)


def _check_device(device: str, *, here: bool) -> None:
    """A device name artgraph knows; for local workers, one this machine has."""
    from .devices import DeviceError, resolve_device

    try:
        if here:
            resolve_device(device)
        elif device not in ("auto", "cpu", "cuda", "mps"):
            raise DeviceError(f"unknown device '{device}'; use auto, cpu, cuda or mps")
    except DeviceError as exc:
        raise GraphError([Problem("--device", None, None, str(exc))]) from None


def _pool(
    executor: str,
    source: GraphSource,
    out: Path,
    device: str,
    disk: str | None,
    workers: int | None,
    address: str | None,
    threads: int | None,
) -> Pool:
    token = secrets.token_hex(8)
    write_marker(out, token)
    setup = WorkerSetup(source, str(out), token, device, disk)
    if executor == "ray":
        from .rayexec import RayPool

        return RayPool(setup, workers, address=address, threads=threads)
    from .batchexec import LocalPool, local_slots

    return LocalPool(setup, local_slots(device, workers, threads))


# --- the command ----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("graph", metavar="GRAPH", help="graph file, or the name of a packaged example")
    parser.add_argument(
        "--over",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUES",
        help="values for a param: a glob of files ('photos/*.jpg'), a comma list (1,2,3), a range "
        "(1..10:+3, 1e3..1e5:x10); several --over make every combination",
    )
    parser.add_argument(
        "--items", metavar="FILE", help="one item per row: a .csv with a header of NODE.PARAM, or a .jsonl of objects"
    )
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="where items run (default: local)")
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes or actors (default: one per GPU, else a few)"
    )
    parser.add_argument("--address", metavar="ADDR", help="with --executor ray: join this cluster (default: start Ray)")
    parser.add_argument("--out", default="out", metavar="DIR", help="output folder: OUT/ITEM/ and OUT/manifest.jsonl")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cache", metavar="DIR", help="disk cache folder (default: the user cache folder)")
    group.add_argument("--no-cache", action="store_true", help="no disk cache (each worker still keeps its memory)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    parser.add_argument(
        "--threads", type=int, metavar="N", help="PyTorch CPU threads per worker (default: the cores shared out)"
    )
    parser.add_argument("--retries", type=int, default=1, metavar="N", help="tries after an item fails (default: 1)")
    parser.add_argument("--retry-failed", action="store_true", help="run again the items the manifest has as failed")
    parser.add_argument("--json", action="store_true", help="print one JSON report on stdout at the end")


def run_command(args: argparse.Namespace) -> int:
    """``artgraph batch``: returns the exit code."""
    from .api import load_graph
    from .arguments import folder_arg, path_arg
    from .batchitems import expand
    from .cache import default_cache_dir

    def refuse(message: str) -> int:
        print(f"artgraph batch: error: {message}", file=sys.stderr)
        return EXIT_INVALID

    if args.address is not None and args.executor != "ray":
        return refuse("--address is for --executor ray")
    if args.executor == "ray":
        from .rayexec import import_ray

        try:
            import_ray()
        except BatchError as exc:
            return refuse(str(exc))
    if args.workers is not None and args.workers < 1:
        return refuse(f"--workers must be 1 or more, got {args.workers}")
    if args.retries < 0:
        return refuse(f"--retries must be 0 or more, got {args.retries}")
    if args.threads is not None and args.threads < 1:
        return refuse(f"--threads must be 1 or more, got {args.threads}")
    folder_arg("--out", args.out, create=False)
    if args.items:
        path_arg("--items", args.items)
    graph = load_graph(path_arg("GRAPH", args.graph), validate=False)
    items = expand(graph, args.over, args.items)
    cache: Any = False if args.no_cache else (args.cache if args.cache is not None else default_cache_dir())
    started = time.monotonic()
    try:
        run = batch(
            graph,
            items,
            executor=args.executor,
            workers=args.workers,
            out=args.out,
            cache=cache,
            device=args.device,
            retries=args.retries,
            retry_failed=args.retry_failed,
            address=args.address,
            threads=args.threads,
        )
    except BatchError as exc:
        return refuse(str(exc))
    failures: list[ItemResult] = []
    bar = _Bar(run, quiet=args.json)
    interrupted = False
    try:
        with run:
            for result in run:
                bar.update(result)
                if not result.ok:
                    failures.append(result)
    except KeyboardInterrupt:
        interrupted = True
    except BatchError as exc:
        bar.close()
        print(f"artgraph batch: error: {exc}", file=sys.stderr)
        return EXIT_INVALID if run.finished == 0 else EXIT_FAILED
    bar.close()
    return _report(args, run, failures, time.monotonic() - started, interrupted)


def _report(args: argparse.Namespace, run: BatchRun, failures: list[ItemResult], seconds: float, stopped: bool) -> int:
    before = len(run.items) - len(run.todo)
    rate = run.finished / seconds * 60 if seconds > 0 else 0.0
    failed_total = run.failed + len(run.skipped_failed)
    if args.json:
        report = {
            "ok": failed_total == 0 and not stopped,
            "interrupted": stopped,
            "items": len(run.items),
            "done": run.done,
            "failed": run.failed,
            "skipped_done": before - len(run.skipped_failed),
            "skipped_failed": len(run.skipped_failed),
            "seconds": round(seconds, 3),
            "items_per_minute": round(rate, 2),
            "manifest": str(run.manifest.path),
            "workers": run.workers,
            "failures": [f.record() for f in failures],
        }
        print(json.dumps(report, indent=2))
    else:
        parts = [f"{run.done} done", f"{run.failed} failed"]
        if before:
            parts.append(f"{before} skipped (in the manifest already)")
        print(
            f"batch: {', '.join(parts)} in {seconds:.1f}s ({rate:.1f} items/min); manifest {run.manifest.path}",
            file=sys.stderr,
        )
        for failure in failures[:10]:
            print(f"  FAILED {failure.item}: {failure.error}", file=sys.stderr)
        if len(failures) > 10:
            print(f"  ... and {len(failures) - 10} more (see the manifest)", file=sys.stderr)
        if run.skipped_failed:
            print(
                f"  {len(run.skipped_failed)} item(s) failed in an earlier run; --retry-failed runs them again",
                file=sys.stderr,
            )
    if stopped:
        left = len(run.todo) - run.finished
        print(
            f"artgraph batch: interrupted; {run.finished} finished item(s) are in the manifest, "
            f"{left} left: run the same command again to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed_total else EXIT_OK


class _Bar:
    """Items done and failed, items per minute and the time left: a bar on a terminal,
    a line about every tenth of the work elsewhere."""

    def __init__(self, run: BatchRun, *, quiet: bool) -> None:
        self.total, self.quiet = len(run.todo), quiet
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._next_line = 0.1
        self._bar: Any = None
        if quiet:
            return
        before = len(run.items) - len(run.todo)
        extra = f" ({before} in the manifest already)" if before else ""
        print(f"batch: {len(run.todo)} of {len(run.items)} items to run{extra}", file=sys.stderr, flush=True)
        if self.total and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit="item", file=sys.stderr, dynamic_ncols=True)

    def update(self, result: ItemResult) -> None:
        if result.ok:
            self.done += 1
        else:
            self.failed += 1
        finished = self.done + self.failed
        elapsed = time.monotonic() - self.started
        rate = finished / elapsed * 60 if elapsed > 0 else 0.0
        status = f"{self.done} done, {self.failed} failed, {rate:.1f}/min"
        if self._bar is not None:
            self._bar.set_postfix_str(status, refresh=False)
            self._bar.update(1)
        elif not self.quiet and self.total and (finished / self.total >= self._next_line or finished == self.total):
            self._next_line = (int(finished / self.total * 10) + 1) / 10
            left = (self.total - finished) / rate * 60 if rate > 0 else 0.0
            print(f"  {finished}/{self.total} items: {status}, about {left:.0f}s left", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
