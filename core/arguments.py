"""Paths and folders given on the command line, checked before anything runs.

A path no file system can name (a NUL byte, a name over the limit) or a folder
that is a file is a usage problem (exit 2) with the argument's name, not an
internal error halfway through a run.
"""

from __future__ import annotations

import os

from .errors import GraphError, Problem
from .paths import PathProblem, check_text, shown


def path_arg(what: str, value: str) -> str:
    """``value`` if a file system can name it; else a GraphError naming the argument."""
    try:
        check_text(value)
    except PathProblem as exc:
        raise GraphError([Problem(what, None, None, exc.message, exc.hint)]) from None
    return value


def folder_arg(what: str, value: str, *, create: bool) -> str:
    """A folder argument: not a file, not under a file; ``create`` makes it and checks writing."""

    def refuse(message: str, hint: str) -> GraphError:
        return GraphError([Problem(what, None, None, message, hint)])

    path_arg(what, value)
    path = os.path.abspath(value)
    if os.path.exists(path) and not os.path.isdir(path):
        raise refuse(f"{shown(value)} is a file, not a folder", f"give {what} a folder")
    parent = path
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise refuse(f"{shown(value)} is under {shown(parent)}, which is a file", f"give {what} a folder")
    if create:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise refuse(f"cannot create the folder {shown(value)}: {exc.strerror or exc}", "check the path") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise refuse(f"cannot write in the folder {shown(value)}", "check its permissions")
    return value
