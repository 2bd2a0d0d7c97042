"""Where a graph's file params point: inputs under the graph's folder, outputs under ``--out``.

One set of rules, used twice: by validation for the paths written in the graph
(so a bad path is a problem with its line, before anything runs) and by the
executor for paths wired from another node (which validation cannot see). The
rules look at the *real* path, symlinks followed, so a link inside the output
folder cannot carry a write outside it.
"""

from __future__ import annotations

import os
from pathlib import Path


class PathProblem(ValueError):
    """A file param's path is not acceptable; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def shown(value: str) -> str:
    """A path as it can be printed on one line: control characters escaped, long ones cut."""
    if len(value) > 80:
        value = f"{value[:60]}...{value[-12:]}"
    return repr(value) if not value.isprintable() else f"'{value}'"


def fs_limits(path: str) -> tuple[int, int]:
    """The longest name and the longest path of the file system ``path`` would be on
    (255 and 4,096, the usual ones, where the system does not say)."""
    folder = os.path.abspath(path)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    found = []
    for name, fallback in (("PC_NAME_MAX", 255), ("PC_PATH_MAX", 4096)):
        try:
            found.append(os.pathconf(folder, name))
        except (OSError, ValueError, AttributeError):
            found.append(fallback)
    return found[0], found[1]


def check_text(value: str) -> None:
    """Refuse what no file system can name: NUL bytes, names or paths over its limits.

    One rule for paths in graphs (validation, wired values) and on the command line."""
    if "\x00" in value:
        raise PathProblem(f"the path {shown(value)} contains a NUL byte", "no file name can hold one; remove it")
    try:
        raw = os.fsencode(value)
    except UnicodeError:
        raise PathProblem(f"the path {shown(value)} is not a valid file name", "use a name in plain text") from None
    name_max, path_max = fs_limits(value)
    for part in raw.split(os.fsencode(os.sep)):
        if len(part) > name_max:
            raise PathProblem(
                f"a name in the path {shown(value)} is {len(part)} bytes long",
                f"this file system allows at most {name_max} bytes in one name; shorten it",
            )
    if len(os.fsencode(os.path.abspath(value))) >= path_max:
        raise PathProblem(f"the path {shown(value)} is too long", f"paths hold at most {path_max - 1} bytes here")


def inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``root`` or below it (both taken as they are: pass real paths)."""
    path, root = os.fspath(path), os.fspath(root)
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


def resolve_input(value: str, base_dir: str | os.PathLike[str], *, confine: bool = False) -> str:
    """The absolute, real path of a file a node reads; it must exist.

    Relative paths resolve against ``base_dir`` (the graph's folder). With
    ``confine`` (a graph from someone else: a PNG's embedded graph, a server's
    client) the path must stay inside ``base_dir``: no absolute paths, no ``~``,
    no ``..`` or symlink that leads out.
    """
    check_text(value)
    base = Path(base_dir)
    if confine:
        if os.path.isabs(value) or value.startswith("~"):
            raise PathProblem(
                f"input path '{value}' is outside the folder this graph may read ({base})",
                "give a path relative to that folder",
            )
        path = base / value
    else:
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = base / path
    try:
        exists = path.exists()
        real = os.path.realpath(path)
    except OSError as exc:
        raise PathProblem(f"cannot access {path}: {exc.strerror or exc}", "check the path") from None
    if confine and not inside(real, os.path.realpath(base)):
        raise PathProblem(
            f"input path '{value}' leads outside the folder this graph may read ({base})",
            "give a path relative to that folder, without '..' or links that leave it",
        )
    if not exists:
        raise PathProblem(f"file not found: {path}", f"relative paths resolve against {base}")
    return real


def relative_output(value: str) -> str:
    """The normalised relative form of an output path; refuses paths that leave ``--out``.

    This form (not the absolute one) keys the cache, so changing ``--out`` does
    not re-run a search whose checkpoint path is the same relative file.
    """
    check_text(value)
    norm = os.path.normpath(value)
    if os.path.isabs(value) or value.startswith("~") or norm == ".." or norm.startswith(".." + os.sep):
        raise PathProblem(
            f"output path '{value}' escapes the output folder",
            "use a relative path like 'results/out.png'; choose the folder with --out",
        )
    if norm == "." or value.endswith(("/", os.sep)):
        raise PathProblem(
            f"output path '{value}' names a folder, not a file",
            "name a file inside the output folder, e.g. 'result.png'",
        )
    return norm


def resolve_output(value: str, out_dir: str | os.PathLike[str]) -> str:
    """The absolute path of a file a node writes: under ``out_dir``, symlinks included.

    The path is returned as written (``out_dir/value``, made absolute), not with
    its links resolved; the check that it stays inside follows the links.
    """
    norm = relative_output(value)
    root = Path(os.path.abspath(out_dir))
    path = root / norm
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if not inside(real, real_root) or real == real_root:
        raise PathProblem(
            f"output path '{value}' leads outside the output folder through a symbolic link ({real})",
            f"remove the link, or choose another --out than {root}",
        )
    if os.path.isdir(real):
        raise PathProblem(f"output path '{value}' is a folder ({real})", "name a file inside it")
    folder = os.path.dirname(real)
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise PathProblem(
            f"cannot write '{value}': {folder} is a file, not a folder",
            "choose another --out, or another name for the file",
        )
    return str(path)
