"""The node contract: how a node declares its ports, params and identity.

A node is a plain Python function (or a small class when it needs one-time
setup) decorated with :func:`node`. The declaration carries everything the
engine needs to validate a graph *before* running it: typed inputs, typed params
with defaults and constraints, typed outputs, a stable type name and a version.
The decorated function stays an ordinary function, so it can be unit-tested
without any engine at all.

Example::

    @node("image.invert", category="image", inputs={"image": Input(Image)},
          outputs={"image": Image})
    def invert(image):
        \"\"\"Invert the colours of an image.\"\"\"
        return 1.0 - image
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from .errors import PluginError
from .types import Float, Int, PortType, TypeCheckError

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_PORT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Marks a param that has no default and must be given in the graph.
REQUIRED: object = _Required()


@dataclass(frozen=True)
class Input:
    """An input port: a value wired from another node's output."""

    type: PortType
    optional: bool = False
    description: str = ""


@dataclass(frozen=True)
class Param:
    """A literal setting with a default and constraints (ComfyUI's widgets).

    ``default=None`` makes the param optional (it may stay unset). ``file`` marks
    a Path param as a file the node reads (``"input"``: resolved against the
    graph's folder, must exist, fingerprinted into the cache key) or writes
    (``"output"``: resolved under the output folder, may not escape it).
    """

    type: PortType
    default: object = REQUIRED
    min: float | None = None
    max: float | None = None
    choices: tuple[object, ...] | None = None
    description: str = ""
    file: Literal["input", "output"] | None = None
    #: Words a ``file`` param also accepts as they are, not as paths (``weights: auto``).
    keywords: tuple[str, ...] = ()
    #: Endings a path must have (``(".gif",)``), compared without regard to case.
    suffixes: tuple[str, ...] = ()
    #: A rule the value must follow, written once and shared by the params it fits
    #: (a colour, say): returns a message saying what is wrong, or None. It sees
    #: literal and wired values alike.
    rule: Callable[[object], str | None] | None = field(default=None, compare=False)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, raw: object) -> object:
        """Parse and check a value for this param; raise TypeCheckError with the fix."""
        if raw is None and self.default is None:
            return None
        value = self.type.parse_literal(raw)
        self.check_bounds(value)
        return value

    def check_bounds(self, value: object) -> None:
        """Check min/max/choices, suffixes and the rule of an already-typed value (literal or wired)."""
        if value is None and self.default is None:
            return
        if self.suffixes and isinstance(value, str) and value not in self.keywords:
            if not value.lower().endswith(self.suffixes):
                raise TypeCheckError(f"'{value}' should end in {' or '.join(self.suffixes)}")
        if self.rule is not None and value not in self.keywords:
            broken = self.rule(value)
            if broken:
                raise TypeCheckError(broken)
        if self.choices is not None and value not in self.choices:
            options = ", ".join(repr(c) for c in self.choices)
            raise TypeCheckError(f"{value!r} is not one of the choices: {options}")
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, (int, float)) or isinstance(item, bool):
                continue
            if self.min is not None and item < self.min:
                raise TypeCheckError(f"{item!r} is below the minimum {self.min:g}")
            if self.max is not None and item > self.max:
                raise TypeCheckError(f"{item!r} is above the maximum {self.max:g}")

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.type.name, "required": self.required}
        if not self.required:
            out["default"] = self.default
        for key in ("min", "max", "description", "file", "keywords", "suffixes"):
            if getattr(self, key) not in (None, "", ()):
                out[key] = getattr(self, key)
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


#: The param ``seeded=True`` declares.
SEED_PARAM = Param(Int, 0, min=0, description="random seed: the same seed gives the same result")


@dataclass(frozen=True)
class Output:
    """An output port."""

    type: PortType
    description: str = ""


#: A node's own check of its literal params: yields messages, or (message, hint) pairs.
CheckFn = Callable[[Mapping[str, object]], Iterable["str | tuple[str, str]"]]


@dataclass(eq=False)
class NodeSpec:
    """Everything the engine knows about one node type."""

    type_name: str
    fn: Callable[..., object]
    version: int
    category: str
    description: str
    inputs: dict[str, Input]
    params: dict[str, Param]
    outputs: dict[str, Output]
    deterministic: bool = True
    output_node: bool = False
    check: CheckFn | None = None
    wants_ctx: bool = False
    #: The node declared ``seeded=True``: its ``seed`` param seeds ``ctx.rng``.
    seeded: bool = False
    #: Whether the function takes ``seed`` itself (a seeded node may use only ``ctx.rng``).
    takes_seed: bool = True
    #: Filled in when a plugin registers the node.
    plugin: str = ""
    distribution: str = ""
    _instance: object = field(default=None, repr=False)

    @property
    def cacheable(self) -> bool:
        """Output nodes always run (their effect is the point); random nodes too."""
        return self.deterministic and not self.output_node

    @property
    def single_output(self) -> str | None:
        return next(iter(self.outputs)) if len(self.outputs) == 1 else None

    def callable(self) -> Callable[..., object]:
        """The function to call; a class-based node is instantiated once, lazily."""
        if inspect.isclass(self.fn):
            if self._instance is None:
                self._instance = self.fn()
            # An instance of a node class is called through its __call__, whose signature _build_spec read.
            return cast(Callable[..., object], self._instance)
        return self.fn

    def normalise_outputs(self, result: object) -> dict[str, object]:
        """Turn what the function returned into ``{output name: value}``."""
        names = list(self.outputs)
        if not names:
            return {}
        if isinstance(result, Mapping) and set(result) == set(names) and len(names) > 1:
            return dict(result)
        if len(names) == 1:
            if isinstance(result, Mapping) and set(result) == set(names):
                return dict(result)
            return {names[0]: result}
        if isinstance(result, tuple) and len(result) == len(names):
            return dict(zip(names, result, strict=True))
        raise TypeError(
            f"node '{self.type_name}' must return a dict with keys {names} "
            f"or a tuple of {len(names)} values, got {type(result).__name__}"
        )

    def describe(self) -> dict[str, object]:
        """A JSON-ready description for ``artgraph nodes --json`` and the schema."""
        return {
            "type": self.type_name,
            "version": self.version,
            "category": self.category,
            "description": self.description,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "deterministic": self.deterministic,
            "output_node": self.output_node,
            "inputs": {
                n: {"type": i.type.name, "optional": i.optional, "description": i.description}
                for n, i in self.inputs.items()
            },
            "params": {n: p.describe() for n, p in self.params.items()},
            "outputs": {n: {"type": o.type.name, "description": o.description} for n, o in self.outputs.items()},
        }


def node(
    type_name: str,
    *,
    version: int = 1,
    category: str | None = None,
    description: str | None = None,
    inputs: Mapping[str, Input | PortType] | None = None,
    params: Mapping[str, Param | PortType] | None = None,
    outputs: Mapping[str, Output | PortType] | None = None,
    deterministic: bool = True,
    output_node: bool = False,
    check: CheckFn | None = None,
    seeded: bool = False,
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Declare a function (or class) as an artgraph node.

    The function receives its inputs and params as keyword arguments, plus
    ``ctx`` (the :class:`~artgraph.Context`) if it has a parameter of that name.
    It returns the single output's value, a tuple in output order, or a dict.
    Bump ``version`` whenever the node's results change for the same inputs:
    the version is part of the cache key. ``check`` receives the params and
    yields messages for combinations that are invalid: validated up front for
    literal params, and by the executor when some are wired from other nodes, so
    the function itself never re-checks. ``seeded=True`` declares a ``seed``
    param (whole number, default 0) that seeds ``ctx.rng``: the same seed gives
    the same result; the function takes ``seed`` only if it needs the number.
    A param's default is declared once, in its :class:`Param`: a function
    default that differs from it is refused.
    """

    def decorate(fn: Callable[..., object]) -> Callable[..., object]:
        spec = _build_spec(
            fn,
            type_name,
            version,
            category,
            description,
            inputs,
            params,
            outputs,
            deterministic,
            output_node,
            check,
            seeded,
        )
        fn.__artgraph_node__ = spec  # type: ignore[attr-defined]  # the spec travels on the function; see spec_of
        return fn

    return decorate


def spec_of(obj: object) -> NodeSpec:
    """The :class:`NodeSpec` behind a decorated function, class or spec."""
    if isinstance(obj, NodeSpec):
        return obj
    spec = getattr(obj, "__artgraph_node__", None)
    if not isinstance(spec, NodeSpec):
        raise PluginError(f"{obj!r} is not an artgraph node; decorate it with @artgraph.node(...)")
    return spec


def _build_spec(
    fn: Callable[..., object],
    type_name: str,
    version: int,
    category: str | None,
    description: str | None,
    inputs: Mapping[str, Input | PortType] | None,
    params: Mapping[str, Param | PortType] | None,
    outputs: Mapping[str, Output | PortType] | None,
    deterministic: bool,
    output_node: bool,
    check: CheckFn | None,
    seeded: bool = False,
) -> NodeSpec:
    where = f"node '{type_name}'"
    if not _TYPE_NAME.match(type_name):
        raise PluginError(f"{where}: type names are lowercase dotted words like 'image.load'")
    if not isinstance(version, int) or version < 1:
        raise PluginError(f"{where}: version must be a positive int")
    ins = {k: v if isinstance(v, Input) else Input(v) for k, v in (inputs or {}).items()}
    prs = {k: v if isinstance(v, Param) else Param(v) for k, v in (params or {}).items()}
    outs = {k: v if isinstance(v, Output) else Output(v) for k, v in (outputs or {}).items()}
    for name in [*ins, *prs, *outs]:
        if not _PORT_NAME.match(name):
            raise PluginError(f"{where}: '{name}' is not a valid port or param name")
    if seeded:
        if "seed" in prs and (prs["seed"].type is not Int or prs["seed"].required):
            raise PluginError(f"{where}: seeded=True declares 'seed' itself; remove the other declaration")
        prs.setdefault("seed", SEED_PARAM)
    clash = set(ins) & set(prs)
    if clash:
        raise PluginError(f"{where}: {sorted(clash)} declared both as input and param")
    for pname, p in prs.items():
        if p.file is not None and p.type.name != "Path":
            raise PluginError(f"{where}: param '{pname}' has file= but is not a Path")
        if not p.required and p.default is not None:
            try:
                p.check(p.default)
            except TypeCheckError as exc:
                raise PluginError(f"{where}: default of param '{pname}': {exc}") from None
        for ending in p.suffixes:
            if p.type.name not in ("Path", "Str") or not ending.startswith("."):
                raise PluginError(f"{where}: param '{pname}': suffixes are endings of a Path or Str, like '.png'")
        if (
            (p.min is not None or p.max is not None)
            and p.type not in (Int, Float)
            and p.type.element not in (Int, Float)
        ):
            raise PluginError(f"{where}: param '{pname}' has min/max but is not a number")

    target = fn.__call__ if inspect.isclass(fn) else fn
    sig = inspect.signature(target)
    accepted = set(sig.parameters)
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    missing = [n for n in [*ins, *prs] if n not in accepted and not var_kw and not (seeded and n == "seed")]
    if missing:
        raise PluginError(f"{where}: the function does not accept {missing}")
    for pname, p in prs.items():
        declared = sig.parameters.get(pname)
        if declared is None or declared.default is inspect.Parameter.empty or p.required:
            continue
        if _as_lists(declared.default) != _as_lists(p.default):
            raise PluginError(
                f"{where}: param '{pname}' defaults to {p.default!r} in its Param but to {declared.default!r} "
                "in the function; declare the default once (in the Param) and drop the function's, or make them equal"
            )
    doc = inspect.getdoc(fn) or ""
    return NodeSpec(
        type_name=type_name,
        fn=fn,
        version=version,
        category=category or type_name.split(".")[0],
        description=description or (doc.splitlines()[0] if doc else ""),
        inputs=ins,
        params=prs,
        outputs=outs,
        deterministic=deterministic,
        output_node=output_node,
        check=check,
        wants_ctx="ctx" in accepted,
        seeded=seeded,
        takes_seed="seed" in accepted or var_kw,
    )


def _as_lists(value: object) -> object:
    """Tuples as lists: ``(0.0, 0.9)`` is the immutable spelling of a ``[0.0, 0.9]`` default."""
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    return value
