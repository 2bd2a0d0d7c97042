"""``artgraph validate``: exit 0 for a valid graph; exit 2 listing every problem, and no traceback, otherwise.

Each ``python -m artgraph.cli`` imports torch (seconds), so there is one such run,
on invalid graphs (the case where a traceback could leak). It starts in the
background as soon as this module's first test starts and overlaps with the
in-process tests; the exit-0 and --set checks call the same main() in process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from tests.conftest import VALID_GRAPH, dedent, line_no

CLI_BAD = """
artgraph: 1
nodes:
  a:
    type: image.load
    params: {path: nowhere.png}
  s:
    type: image.sav
    inputs: {image: a}
"""

CLI_RUNS = {"bad": ["bad.yaml", "syntax.yaml", "evil.yaml", "missing.yaml"]}


def _cli_folder(folder: Path) -> Path:
    PILImage.new("RGB", (4, 3)).save(folder / "in.png")
    (folder / "good.yaml").write_text(dedent(VALID_GRAPH))
    (folder / "bad.yaml").write_text(dedent(CLI_BAD))
    (folder / "syntax.yaml").write_text("artgraph: 1\nnodes: {a: [}\n")
    (folder / "evil.yaml").write_text("artgraph: 1\nnodes: !!python/object/apply:os.getcwd []\n")
    return folder


@pytest.fixture(scope="module", autouse=True)
def _cli_processes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not any(item.name.startswith("test_cli_invalid") for item in request.session.items):
        yield {}
        return
    folder = _cli_folder(tmp_path_factory.mktemp("cli"))
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "artgraph.cli", "validate", *args],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in CLI_RUNS.items()
    }
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def cli(_cli_processes: dict[str, subprocess.Popen[str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    done = {}
    for name, proc in _cli_processes.items():
        out, err = proc.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


def run_main(
    folder: Path, args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> tuple[int, str, str]:
    """``artgraph ARGS`` in process: what ``python -m artgraph.cli`` passes to sys.exit."""
    from artgraph import cli as cli_module

    monkeypatch.chdir(folder)
    code = cli_module.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_valid_graph_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_main(_cli_folder(tmp_path), ["validate", "good.yaml"], capsys, monkeypatch)
    assert code == 0, err
    assert out == "ok: good.yaml (2 nodes)\n"
    assert err == ""


def test_cli_invalid_graphs_exit_2_with_every_problem_and_no_traceback(
    cli: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    run = cli["bad"]
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    bad = dedent(CLI_BAD)
    assert any(
        line.startswith(f"bad.yaml:{line_no(bad, 'nowhere.png')}: node 'a': param 'path': file not found")
        for line in lines
    ), run.stderr
    assert (
        f"bad.yaml:{line_no(bad, '  s:')}: node 's': unknown node type 'image.sav' — did you mean 'image.save'?"
        in lines
    )
    assert any(line.startswith("syntax.yaml:2: YAML syntax error") for line in lines), run.stderr
    assert any(line.startswith("evil.yaml:2: ") and "python/object" in line for line in lines), run.stderr
    assert any(line.startswith("missing.yaml: graph file not found") for line in lines), run.stderr
    assert lines[-1] == "artgraph: 5 problems; nothing was run"


def test_cli_set_problems_are_located_at_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["validate", "good.yaml", "--set", "a.size=0", "--set", "zz.size=1"]
    code, _, err = run_main(_cli_folder(tmp_path), args, capsys, monkeypatch)
    assert code == 2
    assert "Traceback" not in err
    lines = err.splitlines()
    assert "--set: node 'a': 'a.size=0': param 'size': 0 is below the minimum 1 — give a Int >= 1 and <= 16384" in lines
    assert "--set: node 'zz': 'zz.size=1': no such node — nodes: a, s" in lines
    assert lines[-1] == "artgraph: 2 problems; nothing was run"
