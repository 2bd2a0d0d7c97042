"""Safe YAML loading that remembers where everything came from.

Only YAML's safe subset is accepted (no Python objects). Mappings come back as
:class:`LineDict`, which records the line of the mapping and of each key, so
later stages can point at ``FILE:LINE``. Duplicate keys are refused (YAML
itself would silently keep the last one), and the expanded size of anchors and
aliases is bounded so a "billion laughs" document fails fast.
"""

from __future__ import annotations

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
    pass


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
            raise YamlProblem(key_node.start_mark.line + 1, "a mapping key must be a plain value") from None
        line = key_node.start_mark.line + 1
        if index >= merged:
            if key in explicit_seen:
                raise YamlProblem(
                    line,
                    f"duplicate key '{key}' (first on line {result.key_lines[key]})",
                    "remove or rename one of them",
                )
            explicit_seen.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(root: yaml.Node) -> int:
    """Count nodes as if every alias were copied out, without recursion."""
    sizes: dict[int, int] = {}
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
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
    return sizes[id(root)]


def load_yaml(text: str, filename: str) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return (data, problems). Problems carry the line."""
    loader = _Loader(str(text))
    try:
        root = loader.get_single_node()
        if root is None:
            return None, []
        _expanded_size(root)
        return loader.construct_document(root), []
    except YamlProblem as exc:
        return None, [Problem(filename, exc.line, None, exc.message, exc.hint)]
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


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (``50`` -> 50, ``[a, b]`` -> list)."""
    try:
        return yaml.load(text, Loader=_Loader) if text.strip() else text
    except yaml.YAMLError:
        return text
