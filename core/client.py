"""``artgraph submit``: send a graph to an ``artgraph serve`` and, if asked, follow it to the end.

A thin client of the HTTP API (httpx): it sends the graph's text (or the name of
a shipped example), prints the job id, and with ``--wait`` follows the job's
events — reconnecting after a dropped connection from the last event it saw —
then exits as ``artgraph run`` would: 0 done, 1 failed or cancelled, 2 invalid.
``--download DIR`` fetches the job's outputs; their names come from the server
and are checked like any other input before a byte is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
#: Attempts to reconnect to a job's events after the connection dropped.
RECONNECTS = 20


class ClientError(Exception):
    """A request the server refused or could not answer, said in one line; ``code`` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("graph", metavar="GRAPH", help="graph file, or the name of an example shipped with the server")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE", help="override a param"
    )
    parser.add_argument("--server", required=True, metavar="URL", help="the server, e.g. http://127.0.0.1:8765")
    parser.add_argument("--token", help="the server's token (default: $ARTGRAPH_TOKEN)")
    parser.add_argument("--id", dest="job_id", help="your own id for the job (letters, digits, '-', '_')")
    parser.add_argument("--wait", action="store_true", help="follow the job to its end; exit like 'artgraph run'")
    parser.add_argument("--download", metavar="DIR", help="with --wait: fetch the job's outputs into DIR")
    parser.add_argument("--quiet", action="store_true", help="with --wait: only errors")


class Client:
    """The HTTP API of one server, for Python callers too (``Client(url, token).submit(...)``)."""

    def __init__(self, server: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.server = server.rstrip("/")
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.server}: {exc}") from None
        return response

    def submit(self, graph: str | dict[str, Any], overrides: dict[str, Any], job_id: str | None = None) -> Any:
        """The server's answer to ``POST /jobs`` (201 job, 422 problems, ...)."""
        body: dict[str, Any] = {"graph": graph, "overrides": overrides}
        if job_id is not None:
            body["id"] = job_id
        return self._call("POST", "/jobs", json=body)

    def job(self, job_id: str) -> dict[str, Any]:
        response = self._call("GET", f"/jobs/{job_id}")
        _raise_for(response)
        return dict(response.json())

    def events(self, job_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        """The job's events from ``after`` to its end, reconnecting when the stream drops."""
        import httpx

        failures = 0
        while True:
            try:
                with self._http.stream(
                    "GET", f"/jobs/{job_id}/events", params={"after": after}, timeout=httpx.Timeout(30, read=60)
                ) as response:
                    _raise_for(response)
                    for event in parse_sse(response.iter_lines()):
                        failures = 0
                        after = max(after, int(event.get("seq", after)))
                        yield event
                return  # the server closed the stream: the job ended
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                failures += 1
                if failures > RECONNECTS:
                    raise ClientError(f"lost the connection to {self.server}: {exc}") from None
                time.sleep(min(0.2 * 2**failures, 5.0))

    def download(self, job_id: str, folder: Path, files: list[str]) -> list[Path]:
        """Fetch the job's ``out/`` files into ``folder``; the paths written."""
        from .files import atomic_path

        written = []
        for name in files:
            relative = output_name(name)
            if relative is None:
                continue
            target = folder.joinpath(*relative.parts)
            response = self._call("GET", f"/jobs/{job_id}/files/{name}")
            _raise_for(response)
            with atomic_path(target, confined=False) as tmp:
                tmp.write_bytes(response.content)
            written.append(target)
        return written


def token_from_env(given: str | None) -> str | None:
    """The token given on the command line, else ``ARTGRAPH_TOKEN``; None when neither."""
    token = given if given is not None else os.environ.get("ARTGRAPH_TOKEN")
    return token or None


def output_name(name: str) -> PurePosixPath | None:
    """The path under ``out/`` of a file name a server sent, or None for anything else
    (previews, the log, and any name that would lead out of the download folder)."""
    path = PurePosixPath(name)
    if path.is_absolute() or len(path.parts) < 2 or path.parts[0] != "out" or "\\" in name or "\0" in name:
        return None
    inner = PurePosixPath(*path.parts[1:])
    if any(part in ("..", ".", "") for part in inner.parts):
        return None
    return inner


def parse_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON ``data`` of each Server-Sent Event in ``lines`` (comments and pings skipped)."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield json.loads("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield json.loads("\n".join(data))


def _raise_for(response: Any) -> None:
    if response.status_code < 400:
        return
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text.strip() or response.reason_phrase
    code = EXIT_INVALID if response.status_code in (400, 401, 403, 404, 409, 413, 422, 429) else EXIT_FAILED
    raise ClientError(f"the server answered {response.status_code}: {detail}", code)


def submit(args: argparse.Namespace) -> int:
    from .api import find_graph_file
    from .cli import _Printer
    from .yamlsource import parse_scalar

    def fail(message: str, code: int = EXIT_INVALID) -> int:
        print(f"artgraph submit: error: {message}", file=sys.stderr)
        return code

    if args.download and not args.wait:
        return fail("--download needs --wait (the outputs exist once the job has ended)")
    local = Path(args.graph)
    graph: str
    if local.is_file():
        try:
            graph = local.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return fail(f"cannot read {args.graph}: {exc}")
    elif find_graph_file(args.graph) is not None:
        graph = local.name.removesuffix(".yaml")  # the server's copy of the shipped example
    else:
        return fail(f"{args.graph}: no such graph file (nor a shipped example)")
    overrides: dict[str, Any] = {}
    for item in args.overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            return fail(f"'{item}' is not NODE.PARAM=VALUE (e.g. --set transfer.steps=50)")
        overrides[key.strip()] = parse_scalar(raw)
    client = Client(args.server, token_from_env(args.token))
    try:
        response = client.submit(graph, overrides, args.job_id)
        if response.status_code == 422 and "problems" in response.json():
            problems = response.json()["problems"]
            for p in problems:
                where = args.graph if p.get("file") == "graph.yaml" else p.get("file")
                line = f":{p['line']}" if p.get("line") else ""
                node = f" node '{p['node']}':" if p.get("node") else ""
                hint = f" — {p['hint']}" if p.get("hint") else ""
                print(f"{where}{line}:{node} {p['message']}{hint}", file=sys.stderr)
            return fail(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing was queued")
        _raise_for(response)
        job = response.json()
        print(job["id"], flush=True)
        if not args.wait:
            return EXIT_OK
        return _follow(client, job["id"], args, _Printer(args.quiet))
    except ClientError as exc:
        return fail(str(exc), exc.code)
    except KeyboardInterrupt:
        print(
            f"artgraph submit: stopped following; the job still runs on the server "
            f"(cancel it: curl -X POST {client.server}/jobs/<ID>/cancel)",
            file=sys.stderr,
        )
        return 130
    finally:
        client.close()


def _follow(client: Client, job_id: str, args: argparse.Namespace, printer: Callable[[dict[str, Any]], None]) -> int:
    bars = _Bars(enabled=not args.quiet)
    try:
        for event in client.events(job_id):
            bars(event)
            printer(event)
    finally:
        bars.close()
    job = client.job(job_id)
    status = job["status"]
    if args.download:
        written = client.download(job_id, Path(args.download), job.get("files", []))
        for path in written:
            print(f"  {path}")
    if status == "done":
        print(f"ok: job {job_id} done", file=sys.stderr)
        return EXIT_OK
    report = job.get("report") or {}
    if report.get("problems"):
        for p in report["problems"]:
            print(f"  {p.get('message')}", file=sys.stderr)
        print(f"artgraph submit: job {job_id} was invalid when it ran", file=sys.stderr)
        return EXIT_INVALID
    error = f": {job['error']}" if job.get("error") else ""
    print(f"artgraph submit: job {job_id} {status}{error}", file=sys.stderr)
    return EXIT_FAILED


class _Bars:
    """A progress bar per running node, fed by its ``progress`` events."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bars: dict[str, Any] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        node = event.get("node")
        if event["event"] == "progress" and node is not None:
            from tqdm import tqdm

            bar = self._bars.get(node)
            if bar is None:
                bar = self._bars[node] = tqdm(total=event.get("max"), desc=node, leave=False, file=sys.stderr)
            bar.n = event.get("value", 0)
            metrics = {k: v for k, v in (event.get("metrics") or {}).items() if v is not None}
            if metrics:
                bar.set_postfix(metrics, refresh=False)
            bar.refresh()
        elif event["event"] in ("node_done", "node_error") and node in self._bars:
            self._bars.pop(node).close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
