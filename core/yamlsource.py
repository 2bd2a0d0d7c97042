"""Safe YAML loading that remembers where everything came from.

Only YAML's safe subset is accepted (no Python objects). Mappings come back as
:class:`LineDict`, which records the line of the mapping and of each key, so
later stages can point at ``FILE:LINE``. Duplicate keys are refused (YAML
itself would silently keep the last one). What a stranger's file can ask for is
bounded (see :mod:`.limits`): its size before it is parsed, the nesting of its
lists and mappings before they are composed (composing recurses), and the values
its aliases add, so a "billion laughs" document fails fast.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from . import limits
from .errors import Problem

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):
    """A dict that knows the line of itself and of each of its keys (1-based)."""

    line: int | None = None
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int | None:
        return getattr(self, "key_lines", {}).get(key, self.line)


class YamlProblem(Exception):
    def __init__(self, line: int | None, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.line, self.message, self.hint = line, message, hint


class _Loader(_Base):
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


def _checked(tag: str, construct: Any) -> Any:
    """A scalar constructor whose bad value is a problem at its line, not a traceback.

    PyYAML's own constructors raise plain ValueError and friends for values that
    match a type's pattern but are not one (``2001-02-30``, ``!!int 0o9``).
    """
    kind = tag.rsplit(":", 1)[-1]

    def construct_checked(loader: Any, node: yaml.Node) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            raise YamlProblem(
                node.start_mark.line + 1,
                f"{str(node.value)[:60]!r} is not a valid {kind} ({exc})"
                if isinstance(node, yaml.ScalarNode)
                else f"this value is not a valid {kind} ({exc})",
                "quote it to keep it as text, or correct the value",
            ) from None

    return construct_checked


for _tag, _construct in list(_Loader.yaml_constructors.items()):
    if _tag is not None and _tag != yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG:
        _Loader.add_constructor(_tag, _checked(_tag, _construct))


_RECURSIVE_ALIAS = (
    "a recursive alias: this value contains itself",
    "an alias (*) may not refer to an anchor (&) that encloses it",
)


def _too_deep(line: int | None, limit: int) -> YamlProblem:
    return YamlProblem(
        line,
        f"lists and mappings are nested more than {limit:,} levels deep",
        f"flatten the document; {limits.YAML_DEPTH.how_to_raise()}",
    )


def nesting_problem(value: Any) -> tuple[str, str] | None:
    """(message, hint) when lists and mappings in ``value`` (plain data that did not come
    from YAML text, such as a JSON body) nest deeper than the limit; looked at without
    recursion, so a deep value cannot exhaust the stack."""
    limit = limits.YAML_DEPTH.value
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                problem = _too_deep(None, limit)
                return problem.message, problem.hint
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def _check_nesting(text: str) -> bool:
    """Refuse nesting deeper than the limit from the parser's events, before composing.

    Composing and constructing recurse once per level, so a few hundred ``[`` would
    otherwise end in a RecursionError. This is a flat loop over the events: cheap
    next to composing, and it stops at the first level too many. Returns whether
    the document uses aliases at all (only then need their expansion be checked).
    """
    limit = limits.YAML_DEPTH.value
    depth = 0
    aliases = False
    opening = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    closing = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, opening):
                depth += 1
                if depth > limit:
                    mark = event.start_mark  # the parser marks every event; the stubs allow None
                    raise _too_deep(mark.line + 1 if mark is not None else None, limit)
            elif isinstance(event, closing):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases = True
    except yaml.MarkedYAMLError as exc:
        # libyaml looks ahead through flow collections and stops at its own bound
        # (1000 levels) before handing over the events that would have reached ours.
        if "maximum nesting depth" in str(exc.problem) and exc.problem_mark is not None and limit < 1000:
            raise _too_deep(exc.problem_mark.line + 1, limit) from None
        raise
    return aliases


def _check_aliases(root: yaml.Node) -> None:
    """Bound what aliases add (and the nesting they create), without recursion.

    A value's expanded size is what constructing it would build with every alias
    copied out; what the aliases *add* is the document's expanded size less the
    values actually written, so a large graph is never refused for its size here
    (the byte limit bounds that). A node that contains itself through an alias would
    expand for ever; it is refused. Each node is visited once per pass.
    """
    limit = limits.ALIAS_EXPANSION.value
    max_depth = limits.YAML_DEPTH.value
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)], depths[id(node)] = 1, 0
            continue
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        if children_done:
            sizes[id(node)] = 1 + sum(sizes[id(k)] for k in kids)
            # Nesting made by aliases (an anchor inside an anchor inside ...) is never
            # seen as events, but constructing it recurses just the same.
            depth = 1 + max((depths[id(k)] for k in kids), default=0)
            if depth > max_depth:
                raise _too_deep(node.start_mark.line + 1, max_depth)
            depths[id(node)] = depth
            open_nodes.discard(id(node))
        else:
            if id(node) in open_nodes:
                raise YamlProblem(node.start_mark.line + 1, *_RECURSIVE_ALIAS)
            open_nodes.add(id(node))
            stack.append((node, True))
            for kid in kids:
                if id(kid) in open_nodes:
                    raise YamlProblem(kid.start_mark.line + 1, *_RECURSIVE_ALIAS)
                if id(kid) not in sizes:
                    stack.append((kid, False))
    # What the aliases add: walk the document in its order, each node once; every later
    # mention of a node (an alias) adds its whole expansion. Blame the value holding
    # the alias that goes over the bound (the composed node keeps no line of the alias).
    added = 0
    seen: set[int] = set()
    walk: list[tuple[yaml.Node, yaml.Node]] = [(root, root)]
    while walk:
        node, holder = walk.pop()
        if id(node) in seen:
            added += sizes[id(node)]
            if added > limit:
                raise YamlProblem(
                    holder.start_mark.line + 1,
                    f"aliases (*name) add more than {limit:,} values to the document",
                    "write the values out, or use fewer nested anchors (&) and aliases (*); "
                    + limits.ALIAS_EXPANSION.how_to_raise(),
                )
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            walk.extend((kid, node) for kid in reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            walk.extend((kid, node) for pair in reversed(node.value) for kid in reversed(pair))


def size_problem(size: int) -> tuple[str, str] | None:
    """(message, hint) when a graph of ``size`` bytes is over ``limits.GRAPH_BYTES``."""
    limit = limits.GRAPH_BYTES.value
    if size <= limit:
        return None
    return (
        f"the file is too large to be a graph ({size:,} bytes; the limit is {limit:,} bytes)",
        f"a graph is a short text file; {limits.GRAPH_BYTES.how_to_raise()}",
    )


def _check_size(text: str) -> None:
    if len(text) * 4 <= limits.GRAPH_BYTES.value:  # UTF-8 takes at most 4 bytes a character: no need to count
        return
    found = size_problem(len(text.encode("utf-8", "surrogatepass")))
    if found is not None:
        raise YamlProblem(None, *found)


def _syntax_problem(exc: yaml.YAMLError, text: str, filename: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or str(exc)
        if exc.context:
            what = f"{what} ({exc.context})"
        return Problem(filename, line, None, f"YAML syntax error: {what}", "fix the YAML syntax")
    if isinstance(exc, yaml.reader.ReaderError):
        # libyaml counts the position in UTF-8 bytes, the pure-Python reader in characters.
        if _Base is yaml.SafeLoader:
            line = text.count("\n", 0, exc.position) + 1
        else:
            line = text.encode("utf-8", "surrogatepass")[: exc.position].count(b"\n") + 1
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return Problem(
            filename,
            line,
            None,
            f"YAML error: the character {char} is not allowed ({exc.reason})",
            "remove the character or write it in a quoted string as an escape such as \\x00",
        )
    return Problem(filename, None, None, f"YAML error: {exc}", "fix the YAML syntax")


def _unicode_problem(exc: UnicodeError, text: str, filename: str) -> Problem:
    start = getattr(exc, "start", None)
    line = text.count("\n", 0, start) + 1 if isinstance(start, int) else None
    return Problem(
        filename,
        line,
        None,
        f"the text is not valid Unicode: {getattr(exc, 'reason', exc)}",
        "save the file as UTF-8",
    )


def load_yaml(text: str, filename: str) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return (data, problems). Problems carry the line.

    ``data`` is None when the text cannot be read at all; duplicate keys are
    problems, but the data (first value kept) still comes back so that every
    other problem in the file can be reported in the same pass.
    """
    text = str(text)
    try:
        _check_size(text)
        has_aliases = _check_nesting(text)
    except YamlProblem as exc:
        return None, [Problem(filename, exc.line, None, exc.message, exc.hint)]
    except yaml.YAMLError as exc:
        return None, [_syntax_problem(exc, text, filename)]
    except UnicodeError as exc:
        return None, [_unicode_problem(exc, text, filename)]
    loader = _Loader(text)
    loader.duplicates = []
    try:
        root = loader.get_single_node()
        if root is None:
            return None, []
        if has_aliases:
            _check_aliases(root)
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
    except yaml.YAMLError as exc:
        return None, [_syntax_problem(exc, text, filename)]
    except UnicodeError as exc:
        return None, [_unicode_problem(exc, text, filename)]
    except RecursionError:
        # The nesting checks above stop this first; kept so that no limit raised by
        # the environment can turn a deep document into a traceback.
        return None, [
            Problem(
                filename,
                None,
                None,
                "lists and mappings are nested too deeply to be read",
                f"flatten the document; {limits.YAML_DEPTH.how_to_raise()}",
            )
        ]
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
