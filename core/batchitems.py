"""The items of a batch: what ``--over`` and ``--items`` expand to, each checked before anything runs.

An item is one set of overrides (``{"NODE.PARAM": value}``) for one run of the
graph. ``--over NODE.PARAM=VALUES`` gives a param several values; several
``--over`` make their product; ``--items FILE.csv|.jsonl`` gives one row of
overrides per item (multiplied by any ``--over``); an empty cell of a CSV
leaves that param as the graph has it.

``VALUES`` is a comma list; each element is one of

* a glob (it holds ``*`` or ``?``): the files it matches, sorted, relative to
  the current directory (``photos/*.jpg``; ``**`` descends into folders). A
  glob that matches no file is an error;
* a range ``A..B:+S`` (arithmetic, step S), ``A..B:xF`` (geometric, factor F)
  or ``A..B`` (step 1), B included when reached: ``1..10:+3`` is 1, 4, 7, 10,
  ``1e3..1e5:x10`` is 1000.0, 10000.0, 100000.0. Integers stay integers;
* any other value, read as YAML as ``--set`` reads it (quote an element to
  keep a ``*`` or a ``..`` as text: ``"'a*b'"``). Brackets and quotes group:
  ``[1, 2],[3, 4]`` is two lists.

A relative path given to a param that reads a file is taken from the current
directory (a shell's meaning), in ``--over`` and in ``--items`` files alike, and
made absolute. Each item has a stable id made of a readable slug and a hash of
its overrides (``chelsea-3f9a0c1b2d4e``), so a re-run of the same command from
the same folder finds the items it did before.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .canonical import canonical_json
from .errors import GraphError, Problem, did_you_mean
from .yamlsource import parse_scalar

if TYPE_CHECKING:
    from .api import Graph

OVER_ORIGIN = "--over"
#: At most this many items in one batch (a product of ranges grows fast).
MAX_ITEMS = 1_000_000
#: Items with problems reported one by one; the rest are counted.
SHOWN_ITEM_PROBLEMS = 20

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\.\.({_NUMBER})(?::([x+])({_NUMBER}))?\s*$")
_SLUG_CHARS = re.compile(r"[^A-Za-z0-9._]+")


@dataclass(frozen=True)
class Item:
    """One run of the graph: its overrides and where they came from (``items.csv:12``)."""

    id: str
    overrides: dict[str, Any]
    origin: str = OVER_ORIGIN
    line: int | None = None

    @property
    def where(self) -> str:
        return self.origin if self.line is None else f"{self.origin}:{self.line}"


class ValuesError(ValueError):
    """A ``VALUES`` text that cannot be expanded; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


# --- VALUES -------------------------------------------------------------------------


def split_elements(text: str) -> list[str]:
    """``text`` split at commas outside brackets, braces and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def expand_range(text: str) -> list[Any] | None:
    """The values of a range ``A..B[:+S|:xF]``, or None when ``text`` is not one."""
    match = _RANGE.match(text)
    if match is None:
        return None
    first, last, kind, step_text = match.group(1), match.group(2), match.group(3) or "+", match.group(4) or "1"
    integers = all(_is_int(t) for t in (first, step_text)) and (kind == "x" or _is_int(last))
    a, b, step = float(first), float(last), float(step_text)
    if b < a:
        raise ValuesError(f"range '{text.strip()}' goes down", f"write the smaller end first: {last}..{first}")
    if kind == "+" and step <= 0:
        raise ValuesError(f"range '{text.strip()}': the step must be more than 0", "e.g. 1..10:+3")
    if kind == "x" and (step <= 1 or a <= 0):
        raise ValuesError(
            f"range '{text.strip()}': a geometric range needs a start above 0 and a factor above 1",
            "e.g. 1e3..1e5:x10",
        )
    span = (b - a) / step if kind == "+" else math.log(b / a, step)
    count = math.floor(span + 1e-9) + 1
    if count > MAX_ITEMS:
        raise ValuesError(f"range '{text.strip()}' has {count:,} values", f"at most {MAX_ITEMS:,} items per batch")
    values: list[Any] = []
    for k in range(count):
        v = a + k * step if kind == "+" else a * step**k
        values.append(round(v) if integers else float(f"{v:.12g}"))
    return values


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def expand_values(text: str, cwd: str | os.PathLike[str] | None = None) -> list[Any]:
    """Every value ``VALUES`` stands for (globs become absolute paths, sorted)."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    values: list[Any] = []
    for element in split_elements(text):
        raw = element.strip()
        if not raw:
            raise ValuesError(f"'{text}' has an empty value", "remove the extra comma")
        quoted = raw[0] in "'\""
        if not quoted and ("*" in raw or "?" in raw):
            pattern = os.path.expanduser(raw)
            root = "" if os.path.isabs(pattern) else str(base)
            found = sorted(
                os.path.abspath(os.path.join(root, p))
                for p in glob.glob(pattern, root_dir=root or None, recursive=True)
                if os.path.isfile(os.path.join(root, p))
            )
            if not found:
                raise ValuesError(
                    f"the glob '{raw}' matches no file",
                    f"globs are relative to the current directory ({base}); check the pattern",
                )
            values.extend(found)
            continue
        ranged = None if quoted else expand_range(raw)
        if ranged is not None:
            values.extend(ranged)
        else:
            values.append(parse_scalar(raw))
    return values


# --- items ------------------------------------------------------------------------


def item_id(overrides: Mapping[str, Any]) -> str:
    """A folder name for the item: a readable slug and 12 hex digits of its overrides' hash."""
    digest = hashlib.blake2b(canonical_json(dict(overrides)).encode(), digest_size=6).hexdigest()
    parts = [_slug_part(v) for _, v in sorted(overrides.items())]
    slug = "_".join(p for p in parts if p)[:48].strip("._-")
    return f"{slug}-{digest}" if slug else digest


def _slug_part(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        text = str(value).lower()
    elif isinstance(value, (int, float)):
        text = f"{value:g}"
    elif isinstance(value, str):
        text = Path(value).stem if ("/" in value or os.sep in value or Path(value).suffix) else value
    elif isinstance(value, (list, tuple)):
        text = "-".join(_slug_part(v) for v in value[:4])
    else:
        text = ""
    return _SLUG_CHARS.sub("-", text).strip("._-")[:24]


def product(
    overs: Sequence[tuple[str, list[Any]]], rows: Sequence[tuple[dict[str, Any], str, int | None]]
) -> list[Item]:
    """Every combination of the ``--over`` values with every row (one empty row if none)."""
    bases = list(rows) or [({}, OVER_ORIGIN, None)]
    total = len(bases)
    for _, values in overs:
        total *= len(values)
    if total > MAX_ITEMS:
        raise GraphError(
            [Problem(OVER_ORIGIN, None, None, f"{total:,} items in one batch", f"at most {MAX_ITEMS:,}; split it")]
        )
    keys = [key for key, _ in overs]
    items = []
    for row, origin, line in bases:
        for combo in itertools.product(*(values for _, values in overs)):
            overrides = {**row, **dict(zip(keys, combo, strict=True))}
            items.append(Item(item_id(overrides), overrides, origin, line))
    return items


def parse_over(texts: Iterable[str], cwd: str | os.PathLike[str] | None = None) -> list[tuple[str, list[Any]]]:
    """``NODE.PARAM=VALUES`` texts as (key, values); every problem at once."""
    overs: list[tuple[str, list[Any]]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or "." not in key or not all(key.partition(".")[::2]):
            problems.append(
                Problem(
                    OVER_ORIGIN, None, None, f"'{text}' is not NODE.PARAM=VALUES", "e.g. --over content.path='*.jpg'"
                )
            )
            continue
        if key in seen:
            problems.append(
                Problem(OVER_ORIGIN, None, key.partition(".")[0], f"'{key}' is given twice", "give each param once")
            )
            continue
        seen.add(key)
        try:
            overs.append((key, expand_values(raw, cwd)))
        except ValuesError as exc:
            problems.append(Problem(OVER_ORIGIN, None, key.partition(".")[0], f"'{text}': {exc.message}", exc.hint))
    if problems:
        raise GraphError(problems)
    return overs


def read_rows(path: str | os.PathLike[str]) -> list[tuple[dict[str, Any], str, int | None]]:
    """The rows of an items file (``.csv`` with a header of NODE.PARAM, or ``.jsonl`` of objects),
    each with the file and line it is on; every problem at once."""
    name = str(path)
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise GraphError([Problem(name, None, None, "an items file is .csv or .jsonl", "rename it or convert it")])
    try:
        with open(name, encoding="utf-8", newline="") as fh:
            return _csv_rows(fh, name) if suffix == ".csv" else _jsonl_rows(fh, name)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise GraphError(
            [Problem(name, None, None, f"cannot read the items file: {reason}", "check the path")]
        ) from None


def _csv_rows(fh: Any, name: str) -> list[tuple[dict[str, Any], str, int | None]]:
    reader = csv.reader(fh)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise GraphError([Problem(name, 1, None, "no header row", "the first row names the params: NODE.PARAM,...")])
    keys = [h.strip() for h in header]
    problems = [
        Problem(name, 1, None, f"column '{k}' is not NODE.PARAM", "e.g. content.path")
        for k in keys
        if "." not in k or not all(k.partition(".")[::2])
    ]
    rows: list[tuple[dict[str, Any], str, int | None]] = []
    line = reader.line_num
    for cells in reader:
        start, line = line + 1, reader.line_num
        if not cells:
            continue
        if len(cells) != len(keys):
            problems.append(
                Problem(name, start, None, f"{len(cells)} values for {len(keys)} columns", "one per column")
            )
            continue
        rows.append(({k: parse_scalar(c) for k, c in zip(keys, cells, strict=True) if c.strip()}, name, start))
    if problems:
        raise GraphError(problems)
    return rows


def _jsonl_rows(fh: Any, name: str) -> list[tuple[dict[str, Any], str, int | None]]:
    rows: list[tuple[dict[str, Any], str, int | None]] = []
    problems = []
    for number, text in enumerate(fh, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except ValueError as exc:
            problems.append(Problem(name, number, None, f"not JSON: {exc}", 'one object per line: {"node.param": 1}'))
            continue
        if not isinstance(row, dict) or not all(isinstance(k, str) and "." in k for k in row):
            problems.append(Problem(name, number, None, "not an object of NODE.PARAM keys", '{"node.param": 1}'))
            continue
        rows.append((row, name, number))
    if problems:
        raise GraphError(problems)
    return rows


def expand(
    graph: Graph,
    over: Iterable[str] = (),
    items_file: str | os.PathLike[str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> list[Item]:
    """The items of ``--over`` and ``--items``, with input paths made absolute; not yet validated."""
    overs = parse_over(over, cwd)
    rows = read_rows(items_file) if items_file is not None else []
    if items_file is not None and not rows:
        raise GraphError([Problem(str(items_file), None, None, "the items file has no rows", "add one row per item")])
    if not overs and not rows:
        raise GraphError(
            [Problem(OVER_ORIGIN, None, None, "no items", "give --over NODE.PARAM=VALUES or --items FILE")]
        )
    check_keys(graph, [(k, OVER_ORIGIN, None) for k, _ in overs] + _row_keys(rows))
    items = product(overs, rows)
    return [normalise(graph, item, cwd) for item in items]


def _row_keys(rows: list[tuple[dict[str, Any], str, int | None]]) -> list[tuple[str, str, int | None]]:
    first: dict[str, tuple[str, int | None]] = {}
    for row, origin, line in rows:
        for key in row:
            first.setdefault(key, (origin, line))
    return [(k, o, line) for k, (o, line) in first.items()]


def check_keys(graph: Graph, keys: Iterable[tuple[str, str, int | None]]) -> None:
    """Each NODE.PARAM names a node of the graph and a param of its type (reported once, not per item)."""
    problems = []
    for key, origin, line in keys:
        node_id, _, param = key.partition(".")
        decl = graph.spec.nodes.get(node_id)
        if decl is None:
            hint = did_you_mean(node_id, graph.spec.nodes) or f"nodes: {', '.join(graph.spec.nodes)}"
            problems.append(Problem(origin, line, node_id, f"'{key}': no such node", hint))
            continue
        spec = graph.registry.get(decl.type or "")
        if spec is not None and param not in spec.params:
            hint = did_you_mean(param, spec.params) or f"params of {spec.type_name}: {', '.join(spec.params) or 'none'}"
            problems.append(Problem(origin, line, node_id, f"'{key}': {spec.type_name} has no param '{param}'", hint))
    if problems:
        raise GraphError(problems)


def normalise(graph: Graph, item: Item, cwd: str | os.PathLike[str] | None = None) -> Item:
    """``item`` with relative paths of file-reading params made absolute from ``cwd``; its id from those."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    overrides = {}
    for key, value in item.overrides.items():
        node_id, _, param = key.partition(".")
        decl = graph.spec.nodes.get(node_id)
        spec = graph.registry.get(decl.type or "") if decl is not None else None
        declared = spec.params.get(param) if spec is not None else None
        if (
            declared is not None
            and declared.file == "input"
            and isinstance(value, str)
            and value not in declared.keywords
            and value
            and not os.path.isabs(os.path.expanduser(value))
        ):
            value = str(base / value)
        overrides[key] = value
    return Item(item_id(overrides), overrides, item.origin, item.line)


def validate(graph: Graph, items: Sequence[Item], out: str | os.PathLike[str]) -> None:
    """Plan the graph with every item's overrides, into its own folder; a GraphError lists every
    problem: the graph's own once, each item's at its row (the first few, then a count)."""
    graph_problems: dict[str, Problem] = {}
    item_problems: list[Problem] = []
    bad_items = shown_items = 0
    seen: dict[str, Item] = {}
    for item in items:
        earlier = seen.get(item.id)
        if earlier is not None:
            bad_items += 1
            if len(item_problems) < SHOWN_ITEM_PROBLEMS:
                shown_items += 1
                item_problems.append(
                    Problem(
                        item.origin,
                        item.line,
                        None,
                        f"item {item.id} repeats an earlier item ({earlier.where}): the same overrides",
                        "give each combination once",
                    )
                )
            continue
        seen[item.id] = item
        try:
            graph.plan(item.overrides, Path(out) / item.id)
        except GraphError as exc:
            mine = []
            for problem in exc.problems:
                if problem.file == "--set":  # about this item's values
                    mine.append(Problem(item.origin, item.line, problem.node, problem.message, problem.hint))
                else:
                    graph_problems.setdefault(str(problem), problem)
            if mine:
                bad_items += 1
                if len(item_problems) < SHOWN_ITEM_PROBLEMS:
                    shown_items += 1
                    item_problems.extend(mine)
    problems = list(graph_problems.values()) + item_problems
    if bad_items > shown_items:
        more = bad_items - shown_items
        problems.append(
            Problem(
                "batch",
                None,
                None,
                f"and {more:,} more item{'s' if more != 1 else ''} with problems ({bad_items:,} of {len(items):,})",
                "fix the ones shown and check again",
            )
        )
    if problems:
        raise GraphError(problems)
