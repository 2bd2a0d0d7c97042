"""Structured problems and the exceptions that carry them.

Every user mistake becomes a :class:`Problem` that says where it is (file, line,
node), what is wrong and how to fix it. Validation collects all of them before
anything runs, so a user sees every mistake in one go instead of one per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph, located as precisely as we know."""

    file: str
    line: int | None
    node: str | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        who = f" node '{self.node}':" if self.node else ""
        tail = f" — {self.hint}" if self.hint else ""
        return printable(f"{where}:{who} {self.message}{tail}")

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "node": self.node,
            "message": self.message,
            "hint": self.hint,
        }


class ArtgraphError(Exception):
    """Base class of every error artgraph raises on purpose."""


class GraphError(ArtgraphError):
    """A graph is invalid; ``problems`` lists every reason at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in graph"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class NodeError(ArtgraphError):
    """Raised by a node for a failure the user can act on (bad file, NaN loss...).

    The executor reports its message without a traceback.
    """


class PluginError(ArtgraphError):
    """A plugin broke the rules (bad registration, duplicate names)."""


class Cancelled(ArtgraphError):
    """Raised inside a node (by its progress or preview calls) when its run was asked to stop."""


class RunFailed(ArtgraphError):
    """A run finished with failed nodes; ``result`` holds what did finish."""

    def __init__(self, result: object, failures: list[str]) -> None:
        self.result = result
        self.failures = failures
        super().__init__("run failed:\n" + "\n".join(f"  {f}" for f in failures))


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``): a hostile graph's names and
    values reach the terminal in messages, and must not drive it (clear it, retitle it)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ' — did you mean X?' style suggestion, or '' when nothing is close."""
    import difflib

    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else ""
