"""``artgraph view RUN``: the viewer's page for one run folder, on loopback, with its own token.

``RUN`` is the ``--out`` of ``artgraph run … --events RUN/events.jsonl``; the page
follows the run while it goes on and replays it afterwards. The first line
printed is the page's address, token included (``run --view`` prints the same).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import threading
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INVALID = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run", metavar="RUN", help="a run folder: the --out of 'artgraph run ... --events RUN/events.jsonl'"
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")


def view(args: argparse.Namespace) -> int:
    folder = Path(args.run)
    if not folder.is_dir():
        print(
            f"artgraph view: error: no run folder {args.run}; give the --out of "
            "'artgraph run GRAPH --out RUN --events RUN/events.jsonl'",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        viewer = Viewer(folder, args.port)
    except (ImportError, OSError) as exc:
        print(f"artgraph view: error: {describe(exc, args.port)}", file=sys.stderr)
        return EXIT_INVALID
    print(viewer.address, flush=True)
    if not (folder / "events.jsonl").exists():
        print(f"  {folder / 'events.jsonl'} does not exist yet: the page waits for the run to start", file=sys.stderr)
    viewer.serve()
    return EXIT_OK


def describe(exc: BaseException, port: int) -> str:
    if isinstance(exc, ImportError):
        return f"the viewer needs the 'serve' extra ({exc.name} is missing): pip install 'artgraph[serve]'"
    return f"cannot listen on 127.0.0.1:{port}: {getattr(exc, 'strerror', None) or exc}"


class Viewer:
    """The page for one run folder, listening on loopback; :meth:`serve` blocks, :meth:`start` does not."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        from .runfolder import RUN_ID, RunFolder
        from .serve import listen, make_server
        from .server import create_view_app

        self.token = secrets.token_urlsafe(18)
        self.runs = RunFolder(folder)
        self.socket = listen("127.0.0.1", port)
        port = self.socket.getsockname()[1]
        self.address = f"http://127.0.0.1:{port}/view/{RUN_ID}?token={self.token}"
        import uvicorn

        config = uvicorn.Config(
            create_view_app(self.runs, token=self.token), log_level="warning", timeout_graceful_shutdown=2
        )
        self.server: Any = make_server(config, self.runs)
        self._thread: threading.Thread | None = None

    def serve(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self) -> None:
        """Serve from a thread (for ``run --view``); :meth:`stop` ends it."""
        self._thread = threading.Thread(target=self.serve, name="artgraph-view", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.runs.stopping.set()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
