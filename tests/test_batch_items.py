"""What --over and --items expand to, item ids, and the validation of every item before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage

import artgraph
from artgraph import GraphError
from artgraph.batchitems import (
    ValuesError,
    expand,
    expand_range,
    expand_values,
    item_id,
    split_elements,
    validate,
)
from artgraph.cli import main

SHEET = """\
artgraph: 1
name: sheet
nodes:
  photo: {type: image.load, params: {path: photos/p0.png}}
  small: {type: image.resize, inputs: {image: photo.image}, params: {size: 6}}
  save: {type: image.save, inputs: {image: small.image}, params: {path: sheet.png}}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory: a graph, graph.yaml, and photos/p0.png .. p3.png."""
    (tmp_path / "photos").mkdir()
    for i in range(4):
        PILImage.new("RGB", (8 + i, 6), (40 * i, 10, 10)).save(tmp_path / "photos" / f"p{i}.png")
    (tmp_path / "graph.yaml").write_text(SHEET, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(folder: Path) -> artgraph.Graph:
    return artgraph.load_graph(folder / "graph.yaml", validate=False)


def test_ranges_lists_and_their_number_types():
    assert expand_range("1..10:+3") == [1, 4, 7, 10]
    assert expand_range("1..3") == [1, 2, 3]
    assert expand_range("1e3..1e5:x10") == [1000.0, 10000.0, 100000.0]
    assert expand_range("2..20:x3") == [2, 6, 18]
    assert expand_range("0.1..0.3:+0.1") == [0.1, 0.2, 0.3]  # no 0.30000000000000004, and the end is kept
    assert expand_range("a..b") is None
    assert expand_values("1,2.5,[1, 2],'x,y',hello") == [1, 2.5, [1, 2], "x,y", "hello"]
    assert split_elements("[1, 2],{a: 1, b: 2},'c,d'") == ["[1, 2]", "{a: 1, b: 2}", "'c,d'"]
    assert expand_values("1..2,10") == [1, 2, 10]
    assert expand_values("'a*b','1..3'") == ["a*b", "1..3"]  # quoted: neither a glob nor a range
    for bad, needle in (("5..1", "goes down"), ("1..5:+0", "more than 0"), ("0..9:x2", "geometric"), ("1,,2", "empty")):
        with pytest.raises(ValuesError, match=needle):
            expand_values(bad)


def test_a_glob_is_relative_to_the_current_directory_and_sorted(folder, tmp_path):
    found = expand_values("photos/p*.png")
    assert found == [str(folder / "photos" / f"p{i}.png") for i in range(4)]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = expand_values("../photos/*.png", cwd=elsewhere)
    assert [Path(p).resolve() for p in found] == [folder / "photos" / f"p{i}.png" for i in range(4)]
    assert all(Path(p).is_absolute() for p in found)
    with pytest.raises(ValuesError, match="matches no file") as info:
        expand_values("photos/*.jpg")
    assert str(folder) in info.value.hint


def test_two_overs_make_the_product_with_stable_readable_ids(folder):
    graph = load(folder)
    items = expand(graph, ["photo.path=photos/*.png", "small.size=4,8"])
    assert len(items) == 8
    assert {tuple(sorted(i.overrides.items())) for i in items} == {
        (("photo.path", str(folder / "photos" / f"p{p}.png")), ("small.size", s)) for p in range(4) for s in (4, 8)
    }
    first = items[0]
    assert first.id.startswith("p0_4-") and len(first.id.rsplit("-", 1)[1]) == 12
    assert len({i.id for i in items}) == 8
    again = expand(graph, ["small.size=4,8", "photo.path=photos/*.png"])  # another order, same items
    assert {i.id for i in again} == {i.id for i in items}
    assert item_id({"a.b": 1}) != item_id({"a.b": 2}) and item_id({"a.b": 1}) == item_id({"a.b": 1})


def test_a_relative_input_path_in_a_list_or_an_items_file_is_from_the_current_directory(folder):
    graph = load(folder)
    listed = expand(graph, ["photo.path=photos/p1.png"])
    assert listed[0].overrides == {"photo.path": str(folder / "photos" / "p1.png")}
    (folder / "items.jsonl").write_text('{"photo.path": "photos/p2.png", "small.size": 3}\n', encoding="utf-8")
    rows = expand(graph, [], "items.jsonl")
    assert rows[0].overrides == {"photo.path": str(folder / "photos" / "p2.png"), "small.size": 3}
    assert (rows[0].origin, rows[0].line) == ("items.jsonl", 1)


def test_every_item_is_validated_and_a_bad_row_is_reported_with_its_line(folder):
    graph = load(folder)
    lines = ["photo.path,small.size"] + [f"photos/p{i % 4}.png,{i + 2}" for i in range(40)]
    lines[30] = "photos/p1.png,-5"  # line 31 of the file
    lines[35] = "photos/missing.png,7"
    (folder / "items.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = expand(graph, [], "items.csv")
    assert len(items) == 40
    with pytest.raises(GraphError) as info:
        validate(graph, items, folder / "out")
    problems = info.value.problems
    assert [(p.file, p.line, p.node) for p in problems] == [("items.csv", 31, "small"), ("items.csv", 36, "photo")]
    assert "-5" in problems[0].message and "file not found" in problems[1].message
    assert str(problems[0]).startswith("items.csv:31: node 'small': ")
    assert not (folder / "out").exists()  # nothing ran, nothing was made


def test_the_cli_reports_bad_items_before_anything_runs(folder, capsys):
    code = main(["batch", "graph.yaml", "--over", "small.size=4,-1,0", "--over", "photo.path=photos/*.png"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--over: node 'small': 'small.size=-1'" in err and "'small.size=0'" in err
    assert "nothing was run" in err and not (folder / "out").exists()
    # a param or node that does not exist: once, not once per item
    assert main(["batch", "graph.yaml", "--over", "small.sise=4,5", "--over", "phot.path=x"]) == 2
    err = capsys.readouterr().err
    assert err.count("small.sise") == 1 and "did you mean 'size'?" in err
    assert "'phot.path': no such node" in err and "did you mean 'photo'?" in err


def test_usage_mistakes_are_refused_with_one_line_each(folder, capsys):
    for argv, needle in (
        (["--over", "photo.path=nothere/*.png"], "the glob 'nothere/*.png' matches no file"),
        (["--over", "small.size=4", "--workers", "0"], "--workers must be 1 or more"),
        (["--over", "small.size=4", "--retries", "-1"], "--retries must be 0 or more"),
        (["--over", "small.size=4", "--threads", "0"], "--threads must be 1 or more"),
        (["--over", "small.size"], "is not NODE.PARAM=VALUES"),
        ([], "no items"),
        (["--items", "rows.txt"], "an items file is .csv or .jsonl"),
        (["--items", "none.csv"], "cannot read the items file"),
        (["--over", "small.size=4", "--address", "x:1"], "--address is for --executor ray"),
        (["--over", "small.size=4,4"], "repeats an earlier item"),
        (["--over", "small.size=4", "--device", "gpu"], "unknown device 'gpu'"),
    ):
        assert main(["batch", "graph.yaml", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert needle in err, (argv, err)
    (folder / "blocker").write_text("a file")
    assert main(["batch", "graph.yaml", "--over", "small.size=4", "--out", "blocker/out"]) == 2
    assert "which is a file" in capsys.readouterr().err


def test_bad_rows_of_an_items_file_are_found_at_once(folder):
    graph = load(folder)
    (folder / "rows.jsonl").write_text('{"small.size": 4}\nnot json\n["a"]\n\n{"small.size": 5}\n', encoding="utf-8")
    with pytest.raises(GraphError) as info:
        expand(graph, [], "rows.jsonl")
    assert [(p.line, p.message.split(":")[0]) for p in info.value.problems] == [
        (2, "not JSON"),
        (3, "not an object of NODE.PARAM keys"),
    ]
    (folder / "rows.csv").write_text("small.size,photo\n4,x\n", encoding="utf-8")
    with pytest.raises(GraphError, match=r"column 'photo' is not NODE\.PARAM"):
        expand(graph, [], "rows.csv")
    (folder / "rows.csv").write_text("small.size\n4\n5,6\n", encoding="utf-8")
    with pytest.raises(GraphError) as info:
        expand(graph, [], "rows.csv")
    assert info.value.problems[0].line == 3
    (folder / "rows.csv").write_text("small.size,photo.path\n4,\n", encoding="utf-8")  # an empty cell: the graph's own
    assert expand(graph, [], "rows.csv")[0].overrides == {"small.size": 4}


def test_many_bad_items_are_counted_not_all_listed(folder):
    graph = load(folder)
    items = expand(graph, ["small.size=-100..-1"])
    with pytest.raises(GraphError) as info:
        validate(graph, items, folder / "out")
    problems = info.value.problems
    assert len(problems) == 21
    assert problems[-1].message == "and 80 more items with problems (100 of 100)"
    json.dumps([p.to_dict() for p in problems])


def test_a_graph_loaded_with_its_own_registry_is_refused_before_anything_is_made(folder, registry):
    from artgraph.batchrun import BatchError

    graph = artgraph.load_graph(folder / "graph.yaml", registry=registry, validate=False)
    with pytest.raises(BatchError, match="with the installed plugins"):
        artgraph.batch(graph, [{"small.size": 3}], out=folder / "out")
    assert not (folder / "out").exists()
