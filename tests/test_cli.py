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
    # The inputs are read from --base (the PNG's own folder, out/, holds no tiny.png).
    again = artgraph("run", "--from", str(result), "--base", str(quick.parent), "--out", "again", "--json", cwd=moved)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    from PIL import Image

    with Image.open(report["outputs"]["save.paths"][0]) as img:
        assert max(img.size) == 20  # the override travelled with the image
    # Before running, it said what it would read and write.
    assert f"{str(result)!r} reads: {(quick.parent / 'tiny.png').resolve()}\n" in again.stderr
    assert f"writes: {moved / 'again' / 'result.png'}\n" in again.stderr


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


# --- hostile and broken input: a Problem with exit 2, never a traceback ----------------------


def main_in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from artgraph import cli

    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err


def png_with_graph(path: Path, graph_yaml: str, made_in: str) -> Path:
    """A PNG carrying a graph the way image.save embeds it."""
    from PIL import Image, PngImagePlugin

    from artgraph.provenance import BASE_DIR_KEY, GRAPH_KEY, SOURCE_KEY

    info = PngImagePlugin.PngInfo()
    info.add_text(GRAPH_KEY, graph_yaml)
    info.add_text(BASE_DIR_KEY, made_in)
    info.add_text(SOURCE_KEY, "g.yaml")
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    return path


def test_run_from_png_reads_inputs_from_the_pngs_folder_not_the_one_it_names(
    tmp_path: Path, tiny_png: Path, capsys: pytest.CaptureFixture[str]
):
    # The PNG claims it was made next to tiny.png; it now lies in a folder of its own.
    shared = tmp_path / "shared"
    shared.mkdir()
    png = png_with_graph(shared / "made.png", QUICK, str(tmp_path))
    out = tmp_path / "out"
    code, _, err = main_in_process(capsys, "run", "--from", str(png), "--out", str(out), "--no-cache")
    assert code == 2
    assert f"file not found: {shared / 'tiny.png'}" in err
    assert f"the PNG says it was made in {tmp_path}" in err and f"add --base {tmp_path}" in err
    assert not out.exists()  # nothing ran
    # Next to its inputs, it reads them from its own folder.
    (shared / "tiny.png").write_bytes(tiny_png.read_bytes())
    code, _, err = main_in_process(capsys, "run", "--from", str(png), "--out", str(out), "--no-cache", "--quiet")
    assert code == 0, err
    assert f"reads: {shared / 'tiny.png'}\n" in err
    assert f"writes: {out / 'result.png'}\n" in err
    assert (out / "result.png").is_file()


def test_the_files_a_png_names_are_printed_escaped(tmp_path: Path, tiny_png: Path, capsys: pytest.CaptureFixture[str]):
    graph = QUICK.replace("path: result.png", 'path: "clear\\x1b[2J.png"')
    png = png_with_graph(tmp_path / "made.png", graph, str(tmp_path))
    out = tmp_path / "out"
    code, _, err = main_in_process(capsys, "run", "--from", str(png), "--out", str(out), "--no-cache", "--quiet")
    assert code == 0, err
    assert "\x1b" not in err
    written = str(out / "clear\x1b[2J.png")
    assert f"writes: {written!r}\n" in err


@pytest.mark.parametrize("path", ["../secret.png", "{secret}", "sub/../../secret.png"])
def test_run_from_png_reads_nothing_outside_its_folder(
    tmp_path: Path, tiny_png: Path, capsys: pytest.CaptureFixture[str], path: str
):
    secret = tmp_path / "secret.png"
    secret.write_bytes(tiny_png.read_bytes())
    shared = tmp_path / "shared"
    (shared / "sub").mkdir(parents=True)
    graph = QUICK.replace("tiny.png", path.format(secret=secret))
    png = png_with_graph(shared / "made.png", graph, str(tmp_path))
    out = tmp_path / "out"
    code, _, err = main_in_process(capsys, "run", "--from", str(png), "--out", str(out), "--no-cache")
    assert code == 2
    assert "outside the folder this graph may read" in err
    assert not out.exists()


def test_base_is_only_for_from_and_must_be_a_folder(tmp_path: Path, quick: Path, capsys: pytest.CaptureFixture[str]):
    code, _, err = main_in_process(capsys, "run", str(quick), "--base", str(tmp_path))
    assert code == 2 and "--base is for --from PNG" in err
    png = png_with_graph(tmp_path / "made.png", QUICK, str(tmp_path))
    code, _, err = main_in_process(capsys, "run", "--from", str(png), "--base", str(quick))
    assert code == 2 and "--base: " in err and "is not a folder" in err


@pytest.mark.parametrize(
    "content",
    [
        b"not an image at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        "truncated",
    ],
)
def test_an_unreadable_png_is_a_problem(tmp_path: Path, quick: Path, content, capsys: pytest.CaptureFixture[str]):
    png = tmp_path / "bad.png"
    if content == "truncated":
        whole = png_with_graph(tmp_path / "whole.png", QUICK, str(tmp_path)).read_bytes()
        content = whole[: len(whole) // 2]
    png.write_bytes(content)
    code, _, err = main_in_process(capsys, "run", "--from", str(png), "--out", str(tmp_path / "out"))
    assert code == 2
    assert f"{png}: " in err and ("cannot read the image" in err or "carries no artgraph graph" in err)


@pytest.mark.parametrize("error", ["bomb", "artgraph", "value"])
def test_whatever_reading_the_png_raises_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: str
):
    from PIL import Image

    from artgraph import provenance
    from artgraph.errors import ArtgraphError

    raised = {
        "bomb": Image.DecompressionBombError("Image size (1000000000 pixels) exceeds limit"),
        "artgraph": ArtgraphError("the image has 1000000000 pixels, more than the limit"),
        "value": ValueError("bad chunk"),
    }[error]

    def read(path: object) -> None:
        raise raised

    monkeypatch.setattr(provenance, "read_png_provenance", read)
    png = png_with_graph(tmp_path / "x.png", QUICK, str(tmp_path))
    code, _, err = main_in_process(capsys, "run", "--from", str(png), "--out", str(tmp_path / "out"))
    assert code == 2
    assert f"{png}: cannot read the image: {raised}" in err


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_a_cache_that_cannot_be_a_folder_is_refused_before_anything_runs(
    tmp_path: Path, quick: Path, capsys: pytest.CaptureFixture[str], where: str
):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cache = a_file if where == "file" else a_file / "cache"
    out = tmp_path / "out"
    code, _, err = main_in_process(capsys, "run", str(quick), "--cache", str(cache), "--out", str(out))
    assert code == 2
    assert err.startswith("--cache: ")
    assert "nothing was run" in err
    assert not out.exists()


def test_a_cache_folder_is_made_when_missing(tmp_path: Path, quick: Path, capsys: pytest.CaptureFixture[str]):
    cache = tmp_path / "new" / "cache"
    code, _, err = main_in_process(
        capsys, "run", str(quick), "--cache", str(cache), "--out", str(tmp_path / "out"), "--quiet"
    )
    assert code == 0, err
    assert cache.is_dir() and any(cache.iterdir())


def test_out_that_is_a_file_is_refused(tmp_path: Path, quick: Path, capsys: pytest.CaptureFixture[str]):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out in (a_file, a_file / "sub"):
        code, _, err = main_in_process(capsys, "run", str(quick), "--no-cache", "--out", str(out))
        assert code == 2 and err.startswith("--out: "), err
    assert a_file.read_text() == "x"


LONG_NAME = "x" * 300


@pytest.mark.parametrize("bad", ["a\x00b", LONG_NAME, f"folder/{LONG_NAME}.yaml"])
@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (("run", "{bad}"), "GRAPH"),
        (("validate", "{quick}", "{bad}"), "GRAPH"),
        (("show", "{bad}"), "GRAPH"),
        (("run", "--from", "{bad}"), "--from"),
        (("run", "{quick}", "--out", "{bad}"), "--out"),
        (("run", "{quick}", "--cache", "{bad}"), "--cache"),
    ],
)
def test_paths_no_file_system_can_name_are_problems(
    tmp_path: Path, quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv, what, bad
):
    monkeypatch.chdir(tmp_path)
    args = [a.format(bad=bad, quick=quick) for a in argv]
    code, _, err = main_in_process(capsys, *args)
    assert code == 2
    assert f"{what}: " in err
    if "\x00" in bad:
        assert "NUL byte" in err
    else:
        assert f"at most {os.pathconf(tmp_path, 'PC_NAME_MAX')} bytes in one name" in err
    assert not (tmp_path / "out").exists()


def test_the_global_flags_go_before_or_after_the_command(quick: Path, capsys: pytest.CaptureFixture[str]):
    from artgraph import cli

    parse = cli._parser().parse_args
    graph = str(quick)
    for argv in (
        ["-v", "--debug", "run", graph],
        ["run", "-v", graph, "--debug"],
        ["--debug", "run", "--verbose", graph],
        ["-v", "validate", graph, "--debug"],
    ):
        args = parse(argv)
        assert (args.verbose, args.debug) == (True, True), argv
    args = parse(["run", graph])
    assert (args.verbose, args.debug) == (False, False)
    # A flag given before the command is not undone by the command's own (absent) copy.
    assert parse(["--debug", "nodes"]).debug is True
    assert parse(["-v", "show", graph]).verbose is True
    code, out, _ = main_in_process(capsys, "validate", "-v", graph, "--debug")
    assert code == 0 and out.startswith(f"ok: {graph}")


def test_nodes_type_names_a_conflict_rather_than_another_type(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    import artgraph
    from artgraph import plugins
    from artgraph.plugins import build_registry

    @artgraph.node("image.loads", outputs={"out": artgraph.Int})
    def loads() -> int:
        return 1

    class Pack:
        @artgraph.hookimpl
        def artgraph_register_nodes(self) -> list[object]:
            return [loads]

    registry = build_registry(plugins=[("one", "dist-one", Pack()), ("two", "dist-two", Pack())])
    assert "image.loads" in registry.conflicts
    monkeypatch.setattr(plugins, "default_registry", lambda: registry)
    code, _, err = main_in_process(capsys, "nodes", "image.loads")
    assert code == 2
    assert registry.conflict_message("image.loads") in err
    assert "did you mean" not in err


def test_validate_reports_on_every_file_however_broken(
    tmp_path: Path, quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("artgraph: 1\nnodes: {a: [}\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("artgraph: 1\nnodes:\n  a: " + "[" * 500 + "]" * 500 + "\n")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    files = [syntax, deep, "a\x00b", tmp_path / "missing.yaml", binary, folder, quick]
    code, out, err = main_in_process(capsys, "validate", *map(str, files))
    assert code == 2
    assert out == f"ok: {quick} (3 nodes)\n"
    assert f"{syntax}:2: YAML syntax error" in err
    assert f"{deep}:3: lists and mappings are nested more than" in err
    assert "GRAPH: the path 'a\\x00b' contains a NUL byte" in err
    assert f"{tmp_path / 'missing.yaml'}: graph file not found" in err
    assert f"{binary}: cannot read the file" in err
    assert f"{folder}: " in err


def test_validate_goes_on_after_an_internal_error(
    tmp_path: Path, quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from artgraph import api, cli

    broken = tmp_path / "broken.yaml"
    broken.write_text(QUICK)
    real = api.parse_spec

    def parse_spec(data, file, base):
        if file == str(broken):
            raise RuntimeError("a bug")
        return real(data, file, base)

    monkeypatch.setattr(api, "parse_spec", parse_spec)
    code = cli.main(["validate", str(broken), str(quick)])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"internal error while checking '{broken}'" in err and "RuntimeError: a bug" in err
    assert out == f"ok: {quick} (3 nodes)\n"


def test_a_graph_file_over_the_size_limit_is_refused_at_once(tmp_path: Path):
    from artgraph import limits

    big = tmp_path / "big.yaml"
    with big.open("w") as fh:
        fh.write("artgraph: 1\nnodes: {}\n")
        line = "# " + "padding " * 12 + "\n"
        for _ in range(limits.GRAPH_BYTES.default // len(line) + 10):
            fh.write(line)
    size = big.stat().st_size
    assert size > 10 * 1024 * 1024 and limits.GRAPH_BYTES.default == 10 * 1024 * 1024
    env = {k: v for k, v in os.environ.items() if k != limits.GRAPH_BYTES.env}
    for argv in (["validate", str(big)], ["run", str(big), "--no-cache"]):
        out = subprocess.run(
            [sys.executable, "-m", "artgraph.cli", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2, out.stderr
        assert f"{big}: the file is too large to be a graph ({size:,} bytes" in out.stderr
        assert limits.GRAPH_BYTES.env in out.stderr
        assert "Traceback" not in out.stderr


def test_the_size_limit_follows_the_environment(
    tmp_path: Path, quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("ARTGRAPH_MAX_GRAPH_BYTES", "100")
    code, _, err = main_in_process(capsys, "validate", str(quick))
    assert code == 2
    assert f"({len(QUICK.encode()):,} bytes; the limit is 100 bytes)" in err


def test_a_closed_stdout_ends_quietly(tmp_path: Path):
    for argv in (["nodes"], ["nodes", "--json"], ["schema"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "artgraph.cli", *argv],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.close()  # the reader is gone before a line is written (`| head -0`)
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
        assert err == "", err


def test_an_out_folder_that_cannot_be_made_is_a_problem_before_anything_runs(
    tmp_path: Path, quick: Path, capsys: pytest.CaptureFixture[str]
):
    code, _, err = main_in_process(capsys, "run", str(quick), "--out", "/proc/artgraph-out", "--no-cache")
    assert code == 2
    assert "--out: cannot create the folder '/proc/artgraph-out'" in err


def test_show_draws_into_a_new_folder_and_reports_an_unwritable_one(
    tmp_path: Path, quick: Path, capsys: pytest.CaptureFixture[str]
):
    pytest.importorskip("pydot")
    target = tmp_path / "drawings" / "deep" / "g.dot"
    code, _, _ = main_in_process(capsys, "show", str(quick), "-o", str(target))
    assert code == 0 and target.read_text().startswith("digraph")
    code, _, err = main_in_process(capsys, "show", str(quick), "-o", "/proc/artgraph.dot")
    assert code == 1
    assert "cannot write /proc/artgraph.dot" in err and "internal error" not in err
