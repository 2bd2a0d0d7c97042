"""Port types: what flows along an edge, and which output may feed which input.

A port type knows three things: how to check a literal written in YAML (for
params), how to check a value a node produced (cheaply, at run time), and how
the value may be stored on disk (its *codec*). The connection rules live in one
function, :func:`can_connect`, so a newcomer can read them in one place.

Plugins declare new types by creating :class:`PortType` objects and returning
them from the ``artgraph_register_types`` hook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any as _AnyValue
from typing import cast

#: Codecs the disk cache understands. ``None`` means "never stored on disk"
#: (models, open handles): such values live in the in-memory cache only.
JSON = "json"
TENSOR = "tensor"


class TypeCheckError(ValueError):
    """A literal or a value does not fit its port type; the message says why."""


LiteralCheck = Callable[["PortType", object], object]
ValueCheck = Callable[[object], "str | None"]


@dataclass(frozen=True, eq=False)
class PortType:
    """A named type of port.

    ``parents`` names the types this one is also (an Image *is* a Tensor), so an
    Image output can feed a Tensor input. ``literal`` parses a YAML literal (for
    params); ``value`` checks a produced value and returns an error message or
    None; ``codec`` says how the disk cache may store values of this type.
    """

    name: str
    description: str = ""
    parents: tuple[str, ...] = ()
    literal: LiteralCheck | None = None
    value: ValueCheck | None = None
    codec: str | None = None
    on_device: bool = False
    element: PortType | None = field(default=None, repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    @property
    def is_list(self) -> bool:
        return self.element is not None

    def parse_literal(self, raw: object) -> object:
        """Check a YAML literal for a param of this type, returning the clean value."""
        if self.literal is None:
            raise TypeCheckError(f"a {self.name} cannot be written as a literal; wire it through 'inputs'")
        return self.literal(self, raw)

    def check_value(self, value: object) -> str | None:
        """Cheap run-time check of a value a node produced; None when it fits."""
        return None if self.value is None else self.value(value)


# --- literal parsers -------------------------------------------------------


#: Int literals fit a signed 64-bit integer: nothing downstream (PyTorch, NumPy, seeds) takes more.
INT_LIMIT = 2**63


def _int(t: PortType, raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeCheckError(f"expected a whole number (Int), got {_show(raw)}")
    if not -INT_LIMIT <= raw < INT_LIMIT:
        raise TypeCheckError(f"{_show(raw)} does not fit in 64 bits (Int is at most {INT_LIMIT - 1:,})")
    return raw


def _float(t: PortType, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TypeCheckError(f"expected a number (Float), got {_show(raw)}")
    try:
        value = float(raw)
    except OverflowError:
        raise TypeCheckError(f"{_show(raw)} is too large for a Float") from None
    if not math.isfinite(value):
        raise TypeCheckError(f"expected a finite number (Float), got {'NaN' if math.isnan(value) else value}")
    return value


def _bool(t: PortType, raw: object) -> bool:
    if not isinstance(raw, bool):
        raise TypeCheckError(f"expected true or false (Bool), got {_show(raw)}")
    return raw


def _str(t: PortType, raw: object) -> str:
    if not isinstance(raw, str):
        raise TypeCheckError(f"expected text (Str), got {_show(raw)}; quote it in YAML")
    return raw


def _path(t: PortType, raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise TypeCheckError(f"expected a file path (Path), got {_show(raw)}")
    return raw


def _json(t: PortType, raw: object) -> object:
    _require_json(raw)
    return raw


def _dict(t: PortType, raw: object) -> object:
    if not isinstance(raw, dict):
        raise TypeCheckError(f"expected a mapping (Dict), got {_show(raw)}")
    _require_json(raw)
    return dict(raw)


def _list(t: PortType, raw: object) -> list[object]:
    assert t.element is not None
    if not isinstance(raw, list):
        raise TypeCheckError(f"expected a list of {t.element.name}, got {_show(raw)}")
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(t.element.parse_literal(item))
        except TypeCheckError as exc:
            raise TypeCheckError(f"item {i}: {exc}") from None
    return out


def _require_json(raw: object) -> None:
    import json

    try:
        json.dumps(raw, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeCheckError(f"expected plain data (numbers, text, lists, mappings): {exc}") from None


def _show(raw: object) -> str:
    text = repr(raw)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(raw).__name__} {text}"


# --- run-time value checks (must stay cheap: they run on every node output) --


def _check_number(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {type(value).__name__}"
    return None


def _check_int(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected an int, got {type(value).__name__}"
    return None


def _check_instance(kind: type | tuple[type, ...], label: str) -> ValueCheck:
    def check(value: object) -> str | None:
        return None if isinstance(value, kind) else f"expected {label}, got {type(value).__name__}"

    return check


def _check_list(element: PortType) -> ValueCheck:
    def check(value: object) -> str | None:
        if not isinstance(value, (list, tuple)):
            return f"expected a list of {element.name}, got {type(value).__name__}"
        for i, item in enumerate(value):
            problem = element.check_value(item)
            if problem:
                return f"item {i}: {problem}"
        return None

    return check


# --- the plain types ---------------------------------------------------------

Any = PortType("Any", "anything; accepts every output", literal=_json)
Float = PortType("Float", "a number", literal=_float, value=_check_number, codec=JSON)
Int = PortType("Int", "a whole number", literal=_int, value=_check_int, codec=JSON)
Bool = PortType("Bool", "true or false", literal=_bool, value=_check_instance(bool, "a bool"), codec=JSON)
Str = PortType("Str", "text", literal=_str, value=_check_instance(str, "text"), codec=JSON)
Path = PortType(
    "Path",
    "a file path; relative paths resolve against the graph's folder (inputs) or --out (outputs)",
    literal=_path,
    value=_check_instance(str, "a path string"),
    codec=JSON,
)
Dict = PortType(
    "Dict",
    "plain data: a mapping of names to numbers, text and lists (histories, reports)",
    literal=_dict,
    value=_check_instance(dict, "a dict"),
    codec=JSON,
)


#: The plain types: values written in YAML and stored as JSON. The kinds of data nodes
#: pass to each other (Tensor, Image, Model, Objective) are in :mod:`artgraph.ports`.
PLAIN_TYPES: tuple[PortType, ...] = (Any, Float, Int, Bool, Str, Path, Dict)

#: id(element type) -> its list type (by identity: two plugins' namesakes stay apart).
_LIST_CACHE: dict[int, PortType] = {}


def List(element: PortType) -> PortType:  # noqa: N802 - reads like a type constructor
    """The type of a list of ``element`` values (``List(Image)``)."""
    cached = _LIST_CACHE.get(id(element))
    if cached is not None:
        return cached
    made = PortType(
        f"List[{element.name}]",
        f"a list of {element.name}",
        literal=_list if element.literal else None,
        value=_check_list(element),
        codec=element.codec,
        on_device=element.on_device,
        element=element,
    )
    _LIST_CACHE[id(element)] = made
    return made


#: Implicit conversions between distinct types: (from, to) -> convert.
_CONVERSIONS: dict[tuple[str, str], Callable[[_AnyValue], _AnyValue]] = {
    ("Int", "Float"): float,
    ("Str", "Path"): str,
    ("Path", "Str"): str,
}


def can_connect(src: PortType, dst: PortType, known: dict[str, PortType] | None = None) -> bool:
    """Whether an output of type ``src`` may feed an input of type ``dst``.

    The whole rule set: identical types; ``Any`` accepts everything; a subtype
    feeds its parents (Image -> Tensor); Int -> Float and Str <-> Path convert;
    lists connect when their elements do; a single value feeds a list input (it
    becomes a list of one). Everything else (Image -> Model, Float -> Int) is refused.
    """
    if dst.name == "Any" or src.name == dst.name:
        return True
    if _is_subtype(src, dst.name, known):
        return True
    if (src.name, dst.name) in _CONVERSIONS:
        return True
    if src.element is not None and dst.element is not None:
        return can_connect(src.element, dst.element, known)
    if dst.element is not None and src.element is None:
        return can_connect(src, dst.element, known)
    return False


def adapt(value: object, src: PortType, dst: PortType) -> object:
    """Convert a value crossing an edge that :func:`can_connect` accepted."""
    if dst.name == "Any" or src.name == dst.name or _is_subtype(src, dst.name, None):
        return value
    convert = _CONVERSIONS.get((src.name, dst.name))
    if convert is not None:
        return convert(value)
    if src.element is not None and dst.element is not None:
        # Both are list types, so the value is the list that src's port produced.
        return [adapt(v, src.element, dst.element) for v in cast(Iterable[object], value)]
    if dst.element is not None:
        return [adapt(value, src, dst.element)]
    return value


def _is_subtype(src: PortType, name: str, known: dict[str, PortType] | None) -> bool:
    seen: set[str] = set()
    stack = list(src.parents)
    while stack:
        parent = stack.pop()
        if parent == name:
            return True
        if parent in seen:
            continue
        seen.add(parent)
        found = (known or {}).get(parent) or _PLAIN_BY_NAME.get(parent)
        if found is not None:
            stack.extend(found.parents)
    return False


_PLAIN_BY_NAME = {t.name: t for t in PLAIN_TYPES}
