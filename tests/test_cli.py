"""The `artgraph` command end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICK = """\
artgraph: 1
name: quick
nodes:
  img:
    type: image.load
    params: {path: tiny.png, size: 6}
  big:
    type: image.resize
    inputs: {image: img}
    params: {size: 24}
  save:
    type: image.save
    inputs: {image: big.image}
    params: {path: result.png}
"""


def artgraph(*args: str, cwd: Path, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["ARTGRAPH_CACHE"] = str(cache or cwd / "cache")
    return subprocess.run(
        [sys.executable, "-m", "artgraph.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def quick(tmp_path: Path, tiny_png: Path) -> Path:
    path = tmp_path / "quick.yaml"
    path.write_text(QUICK)
    return path


def test_help_does_not_import_torch_or_networkx():
    code = "import sys, artgraph.cli; print('torch' in sys.modules, 'networkx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_run_json_report_then_cached_rerun_in_a_new_process(quick: Path):
    first = artgraph("run", str(quick), "--json", cwd=quick.parent)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["ok"] is True
    assert {n: r["status"] for n, r in report["nodes"].items()} == {
        "img": "executed",
        "big": "executed",
        "save": "executed",
    }
    written = report["outputs"]["save.paths"]
    assert written == [str((quick.parent / "out" / "result.png").resolve())]
    assert Path(written[0]).is_file()

    second = artgraph("run", str(quick), "--json", "--set", "big.size=30", cwd=quick.parent)
    report = json.loads(second.stdout)
    assert report["nodes"]["img"]["status"] == "cached"
    assert report["nodes"]["big"] == {
        "status": "executed",
        "seconds": report["nodes"]["big"]["seconds"],
        "reason": "param 'size' changed: 24 -> 30",
    }
    from PIL import Image

    with Image.open(written[0]) as img:
        assert max(img.size) == 30


def test_invalid_graph_exits_2_with_every_problem_and_no_traceback(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "artgraph: 1\nnodes:\n  a:\n    type: image.lod\n  b:\n    type: image.save\n"
        "    inputs: {image: nowhere.image}\n    params: {path: ../../escape.png}\n"
    )
    out = artgraph("run", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"{bad}:3: node 'a': unknown node type 'image.lod' — did you mean 'image.load'?" in out.stderr
    assert f"{bad}:7: node 'b': input 'image' refers to missing node 'nowhere'" in out.stderr
    assert "escapes the output folder" in out.stderr
    assert "3 problems; nothing was run" in out.stderr


def test_bad_set_override_is_reported_as_such(quick: Path):
    out = artgraph("run", str(quick), "--set", "big.size=-3", "--set", "nope.x=1", cwd=quick.parent)
    assert out.returncode == 2
    assert "--set: node 'big': 'big.size=-3': param 'size': -3 is below the minimum 1" in out.stderr
    assert "--set: node 'nope': 'nope.x=1': no such node" in out.stderr


def test_failing_node_exits_1_and_names_the_node(tmp_path: Path, tiny_png: Path):
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    graph = tmp_path / "g.yaml"
    graph.write_text(QUICK.replace("tiny.png", "broken.png"))
    out = artgraph("run", str(graph), "--no-cache", cwd=tmp_path)
    assert out.returncode == 1
    assert "node 'img': image.load: cannot read image" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_from_png_reruns_the_embedded_graph(quick: Path):
    assert artgraph("run", str(quick), "--set", "big.size=20", cwd=quick.parent).returncode == 0
    result = quick.parent / "out" / "result.png"
    moved = quick.parent / "elsewhere"
    moved.mkdir()
    again = artgraph("run", "--from", str(result), "--out", "again", "--json", cwd=moved)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    from PIL import Image

    with Image.open(report["outputs"]["save.paths"][0]) as img:
        assert max(img.size) == 20  # the override travelled with the image


def test_run_from_png_without_graph_is_a_clear_error(tmp_path: Path, tiny_png: Path):
    out = artgraph("run", "--from", str(tiny_png), cwd=tmp_path)
    assert out.returncode == 2
    assert "carries no artgraph graph" in out.stderr


def test_validate_many_files(tmp_path: Path, quick: Path):
    good = artgraph("validate", str(quick), cwd=tmp_path)
    assert good.returncode == 0
    assert good.stdout.strip() == f"ok: {quick} (3 nodes)"
    missing = artgraph("validate", str(quick), str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "nope.yaml: graph file not found" in missing.stderr


def test_nodes_listing_and_detail(tmp_path: Path):
    listing = artgraph("nodes", cwd=tmp_path)
    assert listing.returncode == 0
    assert "image.load (v1, artgraph)" in listing.stdout
    detail = artgraph("nodes", "image.resize", cwd=tmp_path)
    assert "mode: Str (default 'bicubic'; one of 'bilinear', 'bicubic', 'nearest', 'area')" in detail.stdout
    as_json = json.loads(artgraph("nodes", "--json", cwd=tmp_path).stdout)
    load = next(n for n in as_json["nodes"] if n["type"] == "image.load")
    assert load["params"]["size"] == {
        "type": "Int",
        "required": False,
        "default": None,
        "min": 1,
        "max": 16384,
        "description": load["params"]["size"]["description"],
    }
    unknown = artgraph("nodes", "image.lod", cwd=tmp_path)
    assert unknown.returncode == 2 and "did you mean 'image.load'" in unknown.stderr


def test_schema_accepts_good_graphs_and_rejects_bad_ones(tmp_path: Path):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    out = artgraph("schema", cwd=tmp_path)
    schema = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    repo = Path(__file__).resolve().parents[1]
    for graph in (repo / "graphs").glob("*.yaml"):
        assert list(validator.iter_errors(yaml.safe_load(graph.read_text()))) == [], graph
    bad = yaml.safe_load(QUICK.replace("size: 24", "size: -1"))
    assert list(validator.iter_errors(bad))


def test_show_text_and_dot(quick: Path):
    text = artgraph("show", str(quick), cwd=quick.parent)
    assert text.returncode == 0
    assert "big: image.resize" in text.stdout and "image <- img.image" in text.stdout
    dot = artgraph("show", str(quick), "-o", "g.dot", cwd=quick.parent)
    assert dot.returncode == 0, dot.stderr
    content = (quick.parent / "g.dot").read_text()
    assert '"img" -> "big"' in content


def test_usage_errors_exit_2(tmp_path: Path):
    assert artgraph("run", cwd=tmp_path).returncode == 2
    assert artgraph("frobnicate", cwd=tmp_path).returncode == 2
    out = artgraph("run", "missing.yaml", cwd=tmp_path)
    assert out.returncode == 2 and "graph file not found" in out.stderr
    out = artgraph("run", "contact_sheet", "--device", "tpu", cwd=tmp_path)
    assert out.returncode == 2 and "unknown device 'tpu'" in out.stderr


def test_threads_sets_pytorch_threads_and_refuses_zero(tmp_path: Path, monkeypatch, capsys):
    import torch

    from artgraph import cli

    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    out = str(tmp_path / "out")
    assert cli.main(["run", "contact_sheet", "--threads", "1", "--no-cache", "--quiet", "--out", out]) == 0
    assert calls == [1]
    assert cli.main(["run", "contact_sheet", "--threads", "0", "--no-cache", "--quiet", "--out", out]) == 2
    assert "--threads must be 1 or more" in capsys.readouterr().err
    assert calls == [1]
