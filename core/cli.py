"""The ``artgraph`` command: run, validate, nodes, schema, show.

Exit codes: 0 success, 2 invalid graph or usage, 1 a failure while running.
A user mistake never prints a Python traceback (``--debug`` shows them).
Heavy modules (torch, networkx) are imported only by the commands that need them,
so ``artgraph --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artgraph",
        description="Run typed node graphs for deep-learning art, headless, from YAML.",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what nodes do")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a graph", description="Validate, then run a graph.")
    run.add_argument("graph", nargs="?", help="graph file, or the name of a packaged example")
    run.add_argument(
        "--from", dest="from_png", metavar="PNG", help="re-run the graph embedded in a PNG that artgraph wrote"
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
    run.add_argument("--quiet", action="store_true", help="no progress, only errors")

    val = sub.add_parser("validate", help="check graphs without running them")
    val.add_argument("graphs", nargs="+", metavar="GRAPH")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE")
    val.add_argument("--json", action="store_true", help="problems as JSON")

    nodes = sub.add_parser("nodes", help="list node types with their ports and params")
    nodes.add_argument("type", nargs="?", help="show one node type in full")
    nodes.add_argument("--json", action="store_true")

    sub.add_parser("schema", help="print a JSON Schema of graph files (for editors)")

    show = sub.add_parser("show", help="show a graph as text, or draw it")
    show.add_argument("graph")
    show.add_argument("-o", "--output", metavar="FILE", help="write FILE.dot, FILE.svg or FILE.png")
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
        handler = {"run": _run, "validate": _validate, "nodes": _nodes, "schema": _schema, "show": _show}
        return handler[args.command](args)
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


def _print_problems(exc: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "problems": [p.to_dict() for p in exc.problems]}, indent=2))
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    count = len(exc.problems)
    print(f"artgraph: {count} problem{'s' if count != 1 else ''}; nothing was run", file=sys.stderr)


class _Printer:
    """Prints one line per node to stderr as the run goes."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def node_started(self, node_id: str, node_type: str, index: int, total: int) -> None:
        if not self.quiet:
            print(f"[{index}/{total}] {node_id} ({node_type}) ...", file=sys.stderr, flush=True)

    def node_finished(self, node_id: str, report: Any) -> None:
        if report.status == "failed":
            print(f"  FAILED {node_id}: {report.error}", file=sys.stderr)
        elif not self.quiet and report.status == "executed":
            print(f"  done {node_id} in {report.seconds:.2f}s ({report.reason})", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from .api import load_graph
    from .cache import default_cache_dir
    from .devices import DeviceError, resolve_device
    from .errors import GraphError, Problem

    if args.from_png and args.graph:
        print("artgraph: error: give a GRAPH or --from PNG, not both", file=sys.stderr)
        return EXIT_INVALID
    if args.from_png:
        graph = _graph_from_png(args.from_png)
    elif args.graph:
        graph = load_graph(args.graph, validate=False)
    else:
        print("artgraph: error: give a GRAPH file or --from PNG", file=sys.stderr)
        return EXIT_INVALID
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
    cache: Any = False if args.no_cache else (args.cache or default_cache_dir())
    graph.plan(args.overrides, args.out)  # every problem, before anything runs
    if args.outputs:
        plan = graph.plan(args.overrides, args.out)
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
    result = graph.run(
        device=device,
        overrides=args.overrides,
        cache=cache,
        out_dir=args.out,
        outputs=args.outputs,
        progress="quiet" if args.quiet or args.json else "auto",
        listener=_Printer(args.quiet),
        raise_on_failure=False,
    )
    report = result.to_json()
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
    if not result.ok:
        if not args.json:
            print("artgraph: failed:\n" + "\n".join(f"  {f}" for f in result.failures), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _known_output(plan: Any, ref: str) -> bool:
    node_id, _, out = ref.partition(".")
    node = plan.nodes.get(node_id)
    return node is not None and (not out or out in node.spec.outputs)


def _graph_from_png(path: str) -> Any:
    from .api import load_graph
    from .errors import GraphError, Problem
    from .provenance import read_png_provenance

    try:
        found = read_png_provenance(path)
    except (OSError, ValueError) as exc:
        raise GraphError([Problem(path, None, None, f"cannot read the image: {exc}")]) from None
    if found is None:
        raise GraphError(
            [
                Problem(
                    path,
                    None,
                    None,
                    "this PNG carries no artgraph graph",
                    "only PNGs written by image.save carry their graph",
                )
            ]
        )
    return load_graph(
        f"{path} (embedded graph)", text=found.graph_yaml, base_dir=found.base_dir or None, validate=False
    )


def _validate(args: argparse.Namespace) -> int:
    from .api import load_graph
    from .errors import GraphError

    problems = []
    for path in args.graphs:
        try:
            graph = load_graph(path, validate=False)
            plan = graph.plan(args.overrides)
            if not args.json:
                print(f"ok: {path} ({len(plan.nodes)} nodes)")
        except GraphError as exc:
            problems.extend(exc.problems)
    if args.json:
        print(json.dumps({"ok": not problems, "problems": [p.to_dict() for p in problems]}, indent=2))
    if problems:
        raise GraphError(problems) if not args.json else SystemExit(EXIT_INVALID)
    return EXIT_OK


def _nodes(args: argparse.Namespace) -> int:
    from .errors import did_you_mean
    from .plugins import default_registry

    registry = default_registry()
    specs = sorted(registry.nodes.values(), key=lambda s: (s.category, s.type_name))
    if args.type:
        specs = [s for s in specs if s.type_name == args.type]
        if not specs:
            hint = did_you_mean(args.type, registry.nodes)
            print(f"artgraph: no node type '{args.type}'{'; ' + hint if hint else ''}", file=sys.stderr)
            return EXIT_INVALID
    if args.json:
        print(
            json.dumps(
                {
                    "nodes": [s.describe() for s in specs],
                    "broken_plugins": [
                        {"plugin": b.plugin, "distribution": b.distribution, "error": b.error} for b in registry.broken
                    ],
                    "conflicts": registry.conflicts,
                },
                indent=2,
                default=str,
            )
        )
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

    graph = load_graph(args.graph, validate=False)
    plan = graph.plan()
    if args.output:
        write_drawing(plan, args.output)
        print(f"wrote {args.output}")
    else:
        print(render_text(plan))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
