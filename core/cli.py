"""The ``artgraph`` command: run, validate, nodes, schema, show, serve, submit, view, batch.

Exit codes: 0 success, 2 invalid graph or usage, 1 a failure while running.
A user mistake never prints a Python traceback (``--debug`` shows them).
Heavy modules (torch, networkx) are imported only by the commands that need them,
so ``artgraph --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .arguments import folder_arg, path_arg
from .paths import shown
from .rerun import files_of, graph_from_png, suggest_base

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _global_flags(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help="show Python tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log what nodes do")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artgraph",
        description="Run typed node graphs for deep-learning art, headless, from YAML.",
    )
    _global_flags(parser, False)
    # The same flags after the command (`artgraph run -v GRAPH`). SUPPRESS: a flag not
    # repeated there leaves the one given before the command as it was.
    common = argparse.ArgumentParser(add_help=False)
    _global_flags(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run a graph", description="Validate, then run a graph.")
    run.add_argument("graph", nargs="?", help="graph file, or the name of a packaged example")
    run.add_argument(
        "--from", dest="from_png", metavar="PNG", help="re-run the graph embedded in a PNG that artgraph wrote"
    )
    run.add_argument(
        "--base",
        metavar="DIR",
        help="with --from: the folder the graph's input files are read from (default: the PNG's own folder)",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a param (repeatable); VALUE is read as YAML",
    )
    run.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    run.add_argument("--out", default="out", metavar="DIR", help="output folder (default: ./out)")
    run.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for PyTorch (default: its own choice); 1 is faster for small work on a busy CPU",
    )
    group = run.add_mutually_exclusive_group()
    group.add_argument("--cache", metavar="DIR", help="disk cache folder (default: the user cache folder)")
    group.add_argument("--no-cache", action="store_true", help="run everything, store nothing")
    run.add_argument(
        "--output",
        dest="outputs",
        action="append",
        metavar="NODE[.OUTPUT]",
        help="run only what this output needs and report it (repeatable)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    run.add_argument(
        "--events",
        metavar="FILE.jsonl",
        help="write the run's events to FILE, one JSON line each, readable while the run goes on; "
        "node previews go to a 'previews' folder beside it",
    )
    run.add_argument("--quiet", action="store_true", help="no progress, only errors")
    run.add_argument(
        "--view",
        action="store_true",
        help="watch the run in a browser: prints the page's address (events go to OUT/events.jsonl "
        "unless --events says elsewhere); the page stays up after the run until Ctrl-C",
    )

    val = sub.add_parser("validate", parents=[common], help="check graphs without running them")
    val.add_argument("graphs", nargs="+", metavar="GRAPH")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE")
    val.add_argument("--json", action="store_true", help="problems as JSON")

    nodes = sub.add_parser("nodes", parents=[common], help="list node types with their ports and params")
    nodes.add_argument("type", nargs="?", help="show one node type in full")
    nodes.add_argument("--json", action="store_true")

    sub.add_parser("schema", parents=[common], help="print a JSON Schema of graph files (for editors)")

    show = sub.add_parser("show", parents=[common], help="show a graph as text, or draw it")
    show.add_argument("graph")
    show.add_argument("-o", "--output", metavar="FILE", help="write FILE.dot, FILE.svg or FILE.png")

    from . import client, serve, view

    serving = sub.add_parser(
        "serve",
        parents=[common],
        help="run graphs sent over HTTP, keeping models and caches warm",
        description="Serve the HTTP API: a persistent job queue, events, files (see docs/serving.md).",
    )
    serve.add_arguments(serving)
    submitting = sub.add_parser(
        "submit",
        parents=[common],
        help="send a graph to an 'artgraph serve'",
        description="Queue a graph on a server; with --wait follow it and exit like 'artgraph run'.",
    )
    client.add_arguments(submitting)
    viewing = sub.add_parser(
        "view",
        parents=[common],
        help="watch a run folder in a browser",
        description="Serve the viewer's page for one run folder on 127.0.0.1 and print its address.",
    )
    view.add_arguments(viewing)
    from . import batching

    batch_parser = sub.add_parser(
        "batch",
        parents=[common],
        help="run a graph over many inputs, on worker processes or a Ray cluster",
        description="Run one graph per item (--over, --items) on local workers or Ray (see docs/scaling.md).",
    )
    batching.add_arguments(batch_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_INVALID
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="artgraph: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    from .errors import ArtgraphError, GraphError

    try:
        from .client import submit
        from .serve import serve
        from .view import view

        handler = {
            "run": _run,
            "validate": _validate,
            "nodes": _nodes,
            "schema": _schema,
            "show": _show,
            "serve": serve,
            "submit": submit,
            "view": view,
            "batch": _batch,
        }
        code = handler[args.command](args)
        sys.stdout.flush()  # here, so that a reader gone away is noticed below
        return code
    except BrokenPipeError:
        # The reader left early (`artgraph nodes | head -1`): what it wanted, it had.
        # Point stdout at devnull so Python's flush at exit does not complain again.
        _silence_stdout()
        return EXIT_OK
    except GraphError as exc:
        _print_problems(exc, getattr(args, "json", False) and args.command == "run")
        return EXIT_INVALID
    except ArtgraphError as exc:
        print(f"artgraph: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("artgraph: interrupted; the cache and finished outputs are intact", file=sys.stderr)
        return 130
    except Exception:
        if args.debug:
            raise
        import traceback

        print("artgraph: internal error (please report it); rerun with --debug for details:", file=sys.stderr)
        print("  " + traceback.format_exc().strip().splitlines()[-1], file=sys.stderr)
        return EXIT_FAILED


def _batch(args: argparse.Namespace) -> int:
    from .batching import run_command

    return run_command(args)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests)
        pass


def _print_problems(exc: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "problems": [p.to_dict() for p in exc.problems]}, indent=2))
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    count = len(exc.problems)
    print(f"artgraph: {count} problem{'s' if count != 1 else ''}; nothing was run", file=sys.stderr)


class _Printer:
    """Prints one line per node to stderr as the run goes: a sink of the run's events."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "node_start" and not self.quiet:
            print(
                f"[{event['index']}/{event['total']}] {event['node']} ({event['type']}) ...",
                file=sys.stderr,
                flush=True,
            )
        elif kind == "node_error":
            print(f"  FAILED {event['node']}: {event['message']}", file=sys.stderr)
        elif kind == "node_done" and not self.quiet and event["status"] == "executed":
            print(f"  done {event['node']} in {event['seconds']:.2f}s ({event['reason']})", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from .api import load_graph
    from .cache import default_cache_dir
    from .devices import DeviceError, resolve_device
    from .errors import GraphError, Problem, printable

    if args.from_png and args.graph:
        print("artgraph: error: give a GRAPH or --from PNG, not both", file=sys.stderr)
        return EXIT_INVALID
    if args.base is not None and not args.from_png:
        print("artgraph: error: --base is for --from PNG (a GRAPH file reads from its own folder)", file=sys.stderr)
        return EXIT_INVALID
    if not args.from_png and not args.graph:
        print("artgraph: error: give a GRAPH file or --from PNG", file=sys.stderr)
        return EXIT_INVALID
    folder_arg("--out", args.out, create=False)
    # Checked (and made) before anything runs: a cache that cannot be written is
    # a mistake to hear about now, not a silent run without one.
    if args.cache is not None:
        cache: Any = folder_arg("--cache", args.cache, create=True)
    else:
        cache = False if args.no_cache else default_cache_dir()
    found = None
    if args.from_png:
        graph, found = graph_from_png(args.from_png, args.base)
    else:
        graph = load_graph(path_arg("GRAPH", args.graph), validate=False)
    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        raise GraphError([Problem("--device", None, None, str(exc))]) from None
    if args.threads is not None:
        if args.threads < 1:
            raise GraphError([Problem("--threads", None, None, f"--threads must be 1 or more, got {args.threads}")])
        import torch

        # Many small tensor operations (evolutionary searches scoring a few small
        # pictures at a time) lose more to thread hand-offs than they gain, and a
        # parallel region stalls whenever another process holds one of its cores.
        torch.set_num_threads(args.threads)
    try:
        plan = graph.plan(args.overrides, args.out)  # every problem, before anything runs
    except GraphError as exc:
        if found is not None:
            raise suggest_base(exc, found, graph.spec.base_dir) from None
        raise
    folder_arg("--out", args.out, create=True)  # the graph is valid: make the folder, see it is writable
    if found is not None:
        # A graph from a file someone handed over: say what it will touch first.
        # Its paths are printed escaped: they come from the PNG, not from the user.
        reads, writes = ([p if p.isprintable() else repr(p) for p in files] for files in files_of(plan))
        print(f"artgraph: {shown(args.from_png)} reads: {', '.join(reads) or 'nothing'}", file=sys.stderr)
        print(f"artgraph: {shown(args.from_png)} writes: {', '.join(writes) or 'nothing'}", file=sys.stderr)
    if args.outputs:
        bad = [ref for ref in args.outputs if not _known_output(plan, ref)]
        if bad:
            raise GraphError(
                [
                    Problem(
                        "--output",
                        None,
                        None,
                        f"'{ref}' is not NODE or NODE.OUTPUT of this graph",
                        "see 'artgraph show GRAPH' for the nodes",
                    )
                    for ref in bad
                ]
            )
    from .events import JsonLines, RunEvents

    sinks: list[Any] = [_Printer(args.quiet)]
    log, previews, viewer = None, None, None
    if args.view and not args.events:
        args.events = os.path.join(args.out, "events.jsonl")
    if args.events:
        path_arg("--events", args.events)
        try:
            log = JsonLines(args.events)
        except OSError as exc:
            raise GraphError(
                [Problem("--events", None, None, f"cannot write {args.events}: {exc.strerror or exc}")]
            ) from None
        sinks.append(log)
        previews = os.path.join(os.path.dirname(os.path.abspath(args.events)), "previews")
    run_events = RunEvents(sinks, preview_dir=previews)
    if args.view:
        viewer = _start_viewer(os.path.dirname(os.path.abspath(args.events)))
    result = graph.run(
        device=device,
        overrides=args.overrides,
        cache=cache,
        out_dir=args.out,
        outputs=args.outputs,
        progress="quiet" if args.quiet or args.json else "auto",
        events=run_events,
        raise_on_failure=False,
    )
    if log is not None:
        log.close()
    report = result.to_json()
    for warning in result.warnings:  # in the JSON report too; on stderr in any case
        print(f"artgraph: warning: {printable(warning)}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        counts: dict[str, int] = {}
        for r in result.nodes.values():
            counts[r.status] = counts.get(r.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"{'ok' if result.ok else 'FAILED'}: {summary} (device {device})", file=sys.stderr)
        for ref, value in report["outputs"].items():
            print(f"  {ref}: {value if not isinstance(value, list) else ', '.join(map(str, value))}")
    if args.debug:
        for node_id, r in result.nodes.items():
            if r.trace:
                print(f"--- traceback of node '{node_id}':\n{r.trace}", file=sys.stderr)
    code = EXIT_OK
    if not result.ok:
        if not args.json:
            print("artgraph: failed:\n" + "\n".join(f"  {f}" for f in result.failures), file=sys.stderr)
        code = EXIT_FAILED
    if viewer is not None:
        print(f"artgraph: the run is over; its page stays at {viewer.address} until Ctrl-C", file=sys.stderr)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            viewer.stop()
    return code


def _start_viewer(folder: str) -> Any:
    """The viewer of ``run --view``, serving from a thread; its address printed first."""
    from .errors import GraphError, Problem
    from .view import Viewer, describe

    try:
        viewer = Viewer(Path(folder))
    except (ImportError, OSError) as exc:
        raise GraphError([Problem("--view", None, None, describe(exc, 0))]) from None
    viewer.start()
    print(f"artgraph: watch the run at {viewer.address}", file=sys.stderr, flush=True)
    return viewer


def _known_output(plan: Any, ref: str) -> bool:
    node_id, _, out = ref.partition(".")
    node = plan.nodes.get(node_id)
    return node is not None and (not out or out in node.spec.outputs)


def _validate(args: argparse.Namespace) -> int:
    """Check every file, each on its own: one broken file never hides the others."""
    from .api import load_graph
    from .errors import ArtgraphError, GraphError, Problem

    problems: list[Problem] = []
    crashed: list[str] = []
    for path in args.graphs:
        try:
            graph = load_graph(path_arg("GRAPH", path), validate=False)
            plan = graph.plan(args.overrides)
            if not args.json:
                print(f"ok: {path} ({len(plan.nodes)} nodes)")
        except GraphError as exc:
            problems.extend(exc.problems)
        except ArtgraphError as exc:
            problems.append(Problem(path, None, None, str(exc)))
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:
            if args.debug:
                raise
            # A bug of ours, not the file's: report it, then go on with the other files.
            crashed.append(f"{shown(path)}: {type(exc).__name__}: {exc}")
            print(
                f"artgraph: internal error while checking {shown(path)} (please report it; "
                f"rerun with --debug for details): {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
    if args.json:
        report: dict[str, Any] = {"ok": not problems and not crashed, "problems": [p.to_dict() for p in problems]}
        if crashed:
            report["internal_errors"] = crashed
        print(json.dumps(report, indent=2))
        return EXIT_FAILED if crashed else EXIT_INVALID if problems else EXIT_OK
    if problems:
        _print_problems(GraphError(problems), False)
    return EXIT_FAILED if crashed else EXIT_INVALID if problems else EXIT_OK


def _nodes(args: argparse.Namespace) -> int:
    from .errors import did_you_mean
    from .plugins import default_registry

    registry = default_registry()
    specs = sorted(registry.nodes.values(), key=lambda s: (s.category, s.type_name))
    if args.type:
        specs = [s for s in specs if s.type_name == args.type]
        if not specs and args.type in registry.conflicts:
            print(f"artgraph: {registry.conflict_message(args.type)}", file=sys.stderr)
            return EXIT_INVALID
        if not specs:
            hint = did_you_mean(args.type, registry.nodes)
            print(f"artgraph: no node type '{args.type}'{'; ' + hint if hint else ''}", file=sys.stderr)
            return EXIT_INVALID
    if args.json:
        from .schema import nodes_document

        print(json.dumps(nodes_document(registry, specs), indent=2, default=str))
        return EXIT_OK
    category = None
    for spec in specs:
        if spec.category != category and not args.type:
            category = spec.category
            print(f"\n{category}:")
        print(f"  {spec.type_name} (v{spec.version}, {spec.distribution}) — {spec.description}")
        if args.type:
            _print_node_detail(spec)
    if registry.conflicts:
        print("\nconflicts (these types are unusable until one is uninstalled):")
        for name in registry.conflicts:
            print(f"  {registry.conflict_message(name)}")
    if registry.broken:
        print("\nbroken plugins (skipped):")
        for broken in registry.broken:
            print(f"  {broken}")
    return EXIT_OK


def _print_node_detail(spec: Any) -> None:
    for title, ports in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        print(f"    {title}:")
        for name, port in ports.items():
            extra = " (optional)" if getattr(port, "optional", False) else ""
            desc = f" — {port.description}" if port.description else ""
            print(f"      {name}: {port.type.name}{extra}{desc}")
    print("    params:")
    for name, p in spec.params.items():
        bits = ["required" if p.required else f"default {p.default!r}"]
        if p.min is not None:
            bits.append(f"min {p.min:g}")
        if p.max is not None:
            bits.append(f"max {p.max:g}")
        if p.choices is not None:
            bits.append("one of " + ", ".join(map(repr, p.choices)))
        desc = f" — {p.description}" if p.description else ""
        print(f"      {name}: {p.type.name} ({'; '.join(bits)}){desc}")


def _schema(args: argparse.Namespace) -> int:
    from .plugins import default_registry
    from .schema import graph_schema

    print(json.dumps(graph_schema(default_registry()), indent=2, default=str))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from .api import load_graph
    from .show import render_text, write_drawing

    graph = load_graph(path_arg("GRAPH", args.graph), validate=False)
    if args.output:
        path_arg("-o", args.output)
    plan = graph.plan()
    if args.output:
        write_drawing(plan, args.output)
        print(f"wrote {args.output}")
    else:
        print(render_text(plan))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
