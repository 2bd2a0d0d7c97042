"""Paths and folders given on the command line, checked before anything runs.

A path no file system can name (a NUL byte, a name over the limit) or a folder
that is a file is a usage problem (exit 2) with the argument's name, not an
internal error halfway through a run.
"""

from __future__ import annotations

import os

from .errors import GraphError, Problem


def shown(value: str) -> str:
    """A path as it can be printed on one line: control characters escaped, long ones cut."""
    if len(value) > 80:
        value = f"{value[:60]}...{value[-12:]}"
    return repr(value) if not value.isprintable() else f"'{value}'"


def fs_limits(path: str) -> tuple[int, int]:
    """The longest name and path of the file system ``path`` would be on."""
    folder = os.path.abspath(path)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    limits = []
    for name, fallback in (("PC_NAME_MAX", 255), ("PC_PATH_MAX", 4096)):
        try:
            limits.append(os.pathconf(folder, name))
        except (OSError, ValueError, AttributeError):
            limits.append(fallback)
    return limits[0], limits[1]


def path_arg(what: str, value: str) -> str:
    """``value`` if a file system can name it; else a GraphError naming the argument."""

    def refuse(message: str, hint: str) -> GraphError:
        return GraphError([Problem(what, None, None, message, hint)])

    if "\x00" in value:
        raise refuse(f"the path {shown(value)} contains a NUL byte", "no file name can hold one; remove it")
    try:
        raw = os.fsencode(value)
    except UnicodeError:
        raise refuse(f"the path {shown(value)} is not a valid file name", "use a name in plain text") from None
    name_max, path_max = fs_limits(value)
    for part in raw.split(os.fsencode(os.sep)):
        if len(part) > name_max:
            raise refuse(
                f"a name in the path {shown(value)} is {len(part)} bytes long",
                f"this file system allows at most {name_max} bytes in one name; shorten it",
            )
    if len(os.fsencode(os.path.abspath(value))) >= path_max:
        raise refuse(
            f"the path {shown(value)} is too long",
            f"this file system allows paths of at most {path_max - 1} bytes",
        )
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
