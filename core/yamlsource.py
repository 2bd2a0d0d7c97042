"""Safe YAML loading that remembers where everything came from.

Only YAML's safe subset is accepted (no Python objects). Mappings come back as
:class:`LineDict`, which records the line of the mapping and of each key, so
later stages can point at ``FILE:LINE``. Duplicate keys are refused (YAML
itself would silently keep the last one), and the expanded size of anchors and
aliases is bounded so a "billion laughs" document fails fast.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import Problem

#: Largest number of YAML nodes a document may expand to through aliases.
MAX_EXPANDED_NODES = 200_000

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):  # type: ignore[type-arg]
    """A dict that knows the line of itself and of each of its keys (1-based)."""

    line: int | None = None
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int | None:
        return getattr(self, "key_lines", {}).get(key, self.line)


class YamlProblem(Exception):
    def __init__(self, line: int | None, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.line, self.message, self.hint = line, message, hint


class _Loader(_Base):  # type: ignore[misc, valid-type]
    #: (mapping, key, line, first line) of every duplicate key seen while constructing.
    duplicates: list[tuple[LineDict, Any, int, int]]


# YAML 1.1 (PyYAML's default) reads 1e6 and 1.0e6 as text; graphs are full of such
# weights (style_weight: 1.0e6), so read them as the numbers everyone means (YAML 1.2).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> LineDict:
    explicit = len(node.value)
    loader.flatten_mapping(node)
    merged = len(node.value) - explicit  # merge-key pairs come first and may be overridden
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    explicit_seen: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise YamlProblem(
                key_node.start_mark.line + 1,
                "a mapping key must be a plain value",
                "use a name, a number or quoted text as the key",
            ) from None
        line = key_node.start_mark.line + 1
        if index >= merged:
            if key in explicit_seen:
                # Keep the first, report the rest, and go on so every other problem shows too.
                loader.duplicates.append((result, key, line, result.key_lines[key]))
                continue
            explicit_seen.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(root: yaml.Node) -> int:
    """Count nodes as if every alias were copied out, without recursion.

    A node that contains itself through an alias would expand for ever; it is refused.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        if children_done:
            total = 1 + sum(sizes[id(k)] for k in kids)
            if total > MAX_EXPANDED_NODES:
                raise YamlProblem(
                    node.start_mark.line + 1,
                    f"the document expands to more than {MAX_EXPANDED_NODES} values through aliases",
                    "remove the nested anchors (&) and aliases (*)",
                )
            sizes[id(node)] = total
            open_nodes.discard(id(node))
        else:
            if id(node) in open_nodes:
                raise YamlProblem(
                    node.start_mark.line + 1,
                    "a recursive alias: this value contains itself",
                    "an alias (*) may not refer to an anchor (&) that encloses it",
                )
            open_nodes.add(id(node))
            stack.append((node, True))
            for kid in kids:
                if id(kid) in open_nodes:
                    raise YamlProblem(
                        kid.start_mark.line + 1,
                        "a recursive alias: this value contains itself",
                        "an alias (*) may not refer to an anchor (&) that encloses it",
                    )
                if id(kid) not in sizes:
                    stack.append((kid, False))
    return sizes[id(root)]


def load_yaml(text: str, filename: str) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return (data, problems). Problems carry the line.

    ``data`` is None when the text cannot be read at all; duplicate keys are
    problems, but the data (first value kept) still comes back so that every
    other problem in the file can be reported in the same pass.
    """
    loader = _Loader(str(text))
    loader.duplicates = []
    try:
        root = loader.get_single_node()
        if root is None:
            return None, []
        _expanded_size(root)
        data = loader.construct_document(root)
    except YamlProblem as exc:
        return None, [Problem(filename, exc.line, None, exc.message, exc.hint)]
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [
            Problem(
                filename, line, None, f"unsupported YAML: {exc.problem}", "graphs are plain YAML: remove the '!' tag"
            )
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or str(exc)
        if exc.context:
            what = f"{what} ({exc.context})"
        return None, [Problem(filename, line, None, f"YAML syntax error: {what}", "fix the YAML syntax")]
    except yaml.YAMLError as exc:
        return None, [Problem(filename, None, None, f"YAML error: {exc}", "fix the YAML syntax")]
    finally:
        loader.dispose()
    nodes = data.get("nodes") if isinstance(data, dict) else None
    problems = []
    for mapping, key, line, first in loader.duplicates:
        if mapping is nodes:
            problems.append(
                Problem(
                    filename,
                    line,
                    str(key),
                    f"duplicate node id '{key}' (first on line {first})",
                    "rename one of the nodes",
                )
            )
        else:
            problems.append(
                Problem(
                    filename,
                    line,
                    None,
                    f"duplicate key '{key}' (first on line {first})",
                    "remove or rename one of them",
                )
            )
    return data, problems


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (``50`` -> 50, ``[a, b]`` -> list)."""
    if not text.strip():
        return text
    data, problems = load_yaml(text, "--set")
    return text if problems else data
