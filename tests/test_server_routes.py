"""The HTTP API in process (FastAPI's TestClient): every route, its errors and its guard.

Jobs are run by calling the service's worker by hand, so each test decides when
a job runs. What streams or restarts is tested against a real server in
test_serve_process.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from artgraph.schema import nodes_document
from artgraph.server import create_app
from artgraph.service import Service
from tests.conftest import JOB_SHEET, line_no

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def service(data: Path) -> Iterator[Service]:
    svc = Service(data, devices=("cpu",), max_queue=3)
    yield svc
    svc.store.close()


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    # The address a browser on this machine would use: the guard refuses other Host names.
    with TestClient(create_app(service, token=TOKEN), base_url="http://127.0.0.1:8765", headers=AUTH) as c:
        yield c


def run_next(service: Service) -> Any:
    return service.workers[0].run_one()


def submit(client: TestClient, graph: Any = JOB_SHEET, **body: Any) -> Any:
    return client.post("/jobs", json={"graph": graph, **body})


# --- the guard ------------------------------------------------------------------------


def test_health_needs_no_token_and_everything_else_does(service):
    with TestClient(create_app(service, token=TOKEN), base_url="http://127.0.0.1:8765") as anonymous:
        health = anonymous.get("/health")
        assert health.status_code == 200 and health.json()["ok"] is True and health.json()["version"]
        for method, path in [("GET", "/jobs"), ("GET", "/nodes"), ("POST", "/jobs"), ("GET", "/jobs/x/events")]:
            refused = anonymous.request(method, path)
            assert refused.status_code == 401, path
            assert "Bearer" in refused.json()["detail"] and refused.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.get("/jobs", headers={"Authorization": "Bearer not-it"})
        assert wrong.status_code == 401
        assert anonymous.get("/jobs", headers=AUTH).status_code == 200


def test_pages_of_other_origins_and_rebound_host_names_are_refused(client):
    assert client.get("/jobs", headers={"Origin": "http://127.0.0.1:8765"}).status_code == 200
    other = client.get("/jobs", headers={"Origin": "http://evil.example"})
    assert other.status_code == 403 and "evil.example" in other.json()["detail"]
    # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    rebound = client.get("/jobs", headers={"Host": "evil.example:8765", "Origin": "http://evil.example:8765"})
    assert rebound.status_code == 403 and "loopback" in rebound.json()["detail"]


def test_without_a_token_a_loopback_server_answers_everyone_on_this_machine(service):
    with TestClient(create_app(service), base_url="http://localhost:8765") as open_client:
        assert open_client.get("/jobs").json() == {"jobs": []}


# --- submitting ---------------------------------------------------------------------


def test_submit_queues_with_a_position_and_the_job_reads_back(client, service):
    first = submit(client)
    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "queued" and body["position"] == 0 and len(body["id"]) == 32
    second = submit(client, id="mine-2")
    assert second.status_code == 201 and second.json() == {"id": "mine-2", "status": "queued", "position": 1}
    job = client.get("/jobs/mine-2").json()
    assert (job["status"], job["position"], job["attempts"], job["files"]) == ("queued", 1, 0, [])
    assert "graph" not in job  # what was sent is not echoed
    assert [j["id"] for j in client.get("/jobs", params={"status": "queued", "limit": 1}).json()["jobs"]] == ["mine-2"]


def test_a_graph_may_be_a_mapping_or_a_shipped_example(client, service):
    import yaml

    mapping = submit(client, yaml.safe_load(JOB_SHEET), overrides={"small.size": 5})
    assert mapping.status_code == 201
    example = submit(client, "style_transfer", overrides={"transfer.steps": 1})
    assert example.status_code == 201, example.json()
    unknown = submit(client, "no_such_example")
    assert unknown.status_code == 422
    assert "shipped examples" in unknown.json()["problems"][0]["hint"]


def test_an_invalid_graph_gets_every_problem_as_the_cli_prints_them(client, service):
    text = JOB_SHEET.replace("size: 6", "size: -3").replace("image.save", "image.sav")
    answer = submit(client, text)
    assert answer.status_code == 422
    problems = answer.json()["problems"]
    assert {(p["file"], p["line"], p["node"]) for p in problems} == {
        ("graph.yaml", line_no(text, "size: -3"), "small"),
        ("graph.yaml", line_no(text, "image.sav"), "save"),
    }
    assert any("image.save" in p["hint"] for p in problems)  # did you mean
    assert client.get("/jobs").json() == {"jobs": []}  # nothing queued


@pytest.mark.parametrize(
    ("graph", "overrides", "needle"),
    [
        ("- just\n- a list\n", {}, "mapping"),
        ("artgraph: 1\nnodes: {a: {type: [unclosed\n", {}, ""),
        (JOB_SHEET, {"small.sise": 3}, "sise"),
        (JOB_SHEET, {"ghost.size": 3}, "no such node"),
        (JOB_SHEET.replace("uploads/photo.png", "../../etc/passwd"), {}, "outside the folder"),
        (JOB_SHEET.replace("uploads/photo.png", "/etc/passwd"), {}, "outside the folder"),
        (JOB_SHEET.replace("path: sheet.png", "path: ../../escape.png"), {}, ""),
    ],
)
def test_bad_graphs_and_overrides_are_problems_not_reads(client, graph, overrides, needle, data):
    answer = submit(client, graph, overrides=overrides)
    assert answer.status_code == 422, answer.json()
    problems = answer.json()["problems"]
    assert problems and needle in json.dumps(problems)
    assert str(data) not in json.dumps(problems)  # the server's own folders are not disclosed


def test_malformed_requests_get_a_clear_status(client):
    broken = client.post("/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["detail"]
    extra = client.post("/jobs", json={"graph": JOB_SHEET, "priority": 1})
    assert extra.status_code == 422 and "priority" in extra.json()["detail"]
    missing = client.post("/jobs", json={"overrides": {}})
    assert missing.status_code == 422 and "graph" in missing.json()["detail"]
    wrong_type = client.post("/jobs", json={"graph": 5})
    assert wrong_type.status_code == 422


def test_ids_taken_ids_that_could_be_paths_and_a_full_queue(client):
    assert submit(client, id="dup").status_code == 201
    taken = submit(client, id="dup")
    assert taken.status_code == 409 and "exists" in taken.json()["detail"]
    for bad in ["../x", "a/b", "..", "x" * 65, ""]:
        refused = submit(client, id=bad)
        assert refused.status_code == 422, bad
    assert submit(client).status_code == 201 and submit(client).status_code == 201  # 3 queued: the limit
    full = submit(client)
    assert full.status_code == 429 and full.headers["retry-after"] and "limit" in full.json()["detail"]


def test_bodies_over_their_limit_are_refused_with_413(client):
    huge = b'{"graph": "' + b"x" * (100 * 1024 * 1024) + b'"}'  # 100 MB
    answer = client.post("/jobs", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    small_route = client.post("/jobs/x/cancel", content=b"x" * (1024 * 1024))
    assert small_route.status_code == 413
    assert client.get("/health").status_code == 200  # still serving


# --- uploads --------------------------------------------------------------------------


def test_an_uploaded_file_is_what_a_graph_reads_as_uploads_name(client, service, tiny_png, data):
    sent = client.post("/files", files={"file": ("face.png", tiny_png.read_bytes(), "image/png")})
    assert sent.status_code == 201 and sent.json() == {"name": "face.png", "path": "uploads/face.png"}
    job = submit(client, overrides={"photo.path": "uploads/face.png"}).json()
    assert run_next(service).status == "done"
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "done" and "out/sheet.png" in done["files"]
    assert done["report"]["outputs"]["save.paths"] == ["out/sheet.png"]  # never the server's own path


def test_an_upload_never_changes_a_file_queued_jobs_read(client, data):
    first = client.post("/files", files={"file": ("a.bin", b"one")}).json()
    same = client.post("/files", files={"file": ("a.bin", b"one")}).json()
    other = client.post("/files", files={"file": ("a.bin", b"two")}).json()
    assert first["name"] == same["name"] == "a.bin"
    assert other["name"].startswith("a-") and other["name"].endswith(".bin")
    assert (data / "uploads" / "a.bin").read_bytes() == b"one"
    assert (data / "uploads" / other["name"]).read_bytes() == b"two"


@pytest.mark.parametrize("name", ["../evil.png", "sub/evil.png", "..", ".hidden", "a\\b.png", "x" * 200, ""])
def test_upload_names_with_paths_are_refused(client, name, data):
    answer = client.post("/files", files={"file": (name, b"data")})
    assert answer.status_code in (400, 422), name
    assert not (data.parent / "evil.png").exists() and not (data / "uploads" / "sub").exists()


def test_an_upload_over_its_limit_is_refused(client, monkeypatch, service):
    monkeypatch.setenv("ARTGRAPH_MAX_UPLOAD_BYTES", "1000")
    with TestClient(create_app(service, token=TOKEN), base_url="http://127.0.0.1", headers=AUTH) as small:
        answer = small.post("/files", files={"file": ("big.bin", io.BytesIO(b"x" * 200_000))})
    assert answer.status_code == 413


# --- reading, cancelling, deleting -----------------------------------------------------------


def test_unknown_is_never_confused_with_queued(client):
    assert client.get("/jobs/nope").status_code == 404
    assert client.get("/jobs/..%2F..%2Fetc").status_code == 404
    assert client.get("/jobs/nope/files/out/x.png").status_code == 404
    assert client.post("/jobs/nope/cancel").status_code == 404
    assert client.delete("/jobs/nope").status_code == 404
    assert client.get("/jobs/nope/events").status_code == 404
    assert client.get("/jobs", params={"status": "lost"}).status_code == 422
    assert client.get("/jobs", params={"limit": 0}).status_code == 422


def test_files_are_served_from_the_jobs_folder_only(client, service, data):
    job = submit(client).json()["id"]
    run_next(service)
    png = client.get(f"/jobs/{job}/files/out/sheet.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    log = client.get(f"/jobs/{job}/files/events.jsonl")
    assert log.status_code == 200 and json.loads(log.text.splitlines()[0])["event"] == "run_start"
    (data / "secret.txt").write_text("the data folder's own file")
    (data / "jobs" / job / "out" / "link.txt").symlink_to(data / "secret.txt")
    for name in ["../../secret.txt", "out/../../../secret.txt", "out/link.txt", "/etc/passwd", "out", ".", "out//x"]:
        answer = client.get(f"/jobs/{job}/files/{name}")
        assert answer.status_code == 404, name
        assert "data folder's own" not in answer.text


def test_cancel_takes_a_queued_job_out_of_the_queue_and_touches_no_other(client, service):
    keep = submit(client, id="keep").json()["id"]
    drop = submit(client, id="drop").json()["id"]
    assert client.post(f"/jobs/{drop}/cancel").json() == {"id": "drop", "status": "cancelled"}
    assert client.get(f"/jobs/{keep}").json()["status"] == "queued"
    ran = run_next(service)
    assert ran.id == keep and ran.status == "done"
    assert run_next(service) is None  # the cancelled job never runs
    assert client.post(f"/jobs/{keep}/cancel").json()["status"] == "done"  # finished: left as it is


def test_delete_forgets_a_finished_job_and_its_files(client, service, data):
    job = submit(client).json()["id"]
    busy = client.delete(f"/jobs/{job}")
    assert busy.status_code == 409 and "cancel it first" in busy.json()["detail"]
    run_next(service)
    assert (data / "jobs" / job / "out" / "sheet.png").exists()
    assert client.delete(f"/jobs/{job}").json() == {"id": job, "deleted": True}
    assert not (data / "jobs" / job).exists()
    assert client.get(f"/jobs/{job}").status_code == 404


def test_nodes_is_the_document_of_artgraph_nodes_json(client, service):
    answer = client.get("/nodes").json()
    expected = json.loads(json.dumps(nodes_document(service.registry), default=str))
    assert answer == expected and any(n["type"] == "style.transfer" for n in answer["nodes"])


def test_a_finished_jobs_events_stream_to_the_end_and_resume_after_a_seq(client, service):
    job = submit(client).json()["id"]
    run_next(service)
    whole = _sse(client.get(f"/jobs/{job}/events").text)
    assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1)) and whole[-1]["event"] == "run_done"
    rest = _sse(client.get(f"/jobs/{job}/events", params={"after": 3}).text)
    assert rest == whole[3:]
    resumed = _sse(client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": "5"}).text)
    assert resumed == whole[5:]
    # A browser reconnecting to an address with ?after= sends its newer Last-Event-ID: that wins.
    both = _sse(client.get(f"/jobs/{job}/events", params={"after": 2}, headers={"Last-Event-ID": "5"}).text)
    assert both == whole[5:]


def _sse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]


# --- the viewer's pages and its browser session -------------------------------------------


def test_the_page_shells_and_static_files_need_no_token_and_hold_no_job(service):
    with TestClient(create_app(service, token=TOKEN), base_url="http://127.0.0.1:8765") as anonymous:
        submit_id = service.submit(JOB_SHEET).id
        for path in ["/", f"/view/{submit_id}"]:
            page = anonymous.get(path)
            assert page.status_code == 200 and "viewer.js" in page.text and submit_id not in page.text
        assert anonymous.get("/static/viewer.js").status_code == 200
        assert anonymous.get("/static/vendor/chart.min.js").status_code == 200
        assert anonymous.get(f"/jobs/{submit_id}/layout").status_code == 401


def test_opening_a_page_with_the_token_starts_a_session_without_the_token_in_the_address(service):
    with TestClient(create_app(service, token=TOKEN), base_url="http://127.0.0.1:8765") as browser:
        wrong = browser.get("/?token=guess", follow_redirects=False)
        assert wrong.status_code == 200 and "set-cookie" not in wrong.headers
        opened = browser.get(f"/view/abc?token={TOKEN}&x=1", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/view/abc?x=1"
        cookie = opened.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
        assert browser.get("/jobs").status_code == 200  # the session cookie does
        browser.cookies.clear()
        browser.cookies.set(cookie.split("=")[0], "forged")
        assert browser.get("/jobs").status_code == 401
        assert browser.get(f"/jobs?token={TOKEN}").status_code == 401  # tokens in API addresses: no


def test_the_layout_of_a_job_is_its_graph(client, service):
    job = submit(client).json()["id"]
    drawn = client.get(f"/jobs/{job}/layout").json()
    assert [(n["id"], n["type"], n["layer"]) for n in drawn["nodes"]] == [
        ("photo", "image.load", 0),
        ("small", "image.resize", 1),
        ("save", "image.save", 2),
    ]
    assert [(e["from"], e["to"], e["type"]) for e in drawn["edges"]] == [
        ("photo", "small", "Image"),
        ("small", "save", "Image"),
    ]
    assert client.get("/jobs/nope/layout").status_code == 404


def test_a_viewer_may_ask_for_the_newest_progress_only(client, service):
    job = submit(
        client, "artgraph: 1\nnodes:\n  photo: {type: image.load, params: {path: uploads/photo.png}}\n"
    ).json()["id"]
    run_next(service)
    log = service.event_log(job)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    last = events[-1]["seq"]
    extra = [
        {
            "event": "progress",
            "run": job,
            "seq": last + i,
            "time": 0,
            "node": "photo",
            "value": i,
            "max": 3,
            "metrics": {},
        }
        for i in (1, 2, 3)
    ]
    with open(log, "a") as fh:
        fh.writelines(json.dumps(e) + "\n" for e in extra)
    everything = _sse(client.get(f"/jobs/{job}/events").text)
    newest = _sse(client.get(f"/jobs/{job}/events", params={"coalesce": "true"}).text)
    assert [e["value"] for e in everything if e["event"] == "progress"] == [1, 2, 3]
    assert [e["value"] for e in newest if e["event"] == "progress"] == [3]


@pytest.mark.parametrize("depth", [100, 900, 5000])
def test_deeply_nested_bodies_are_refused_not_recursed_into(client, depth):
    nested = '{"a": ' * depth + "1" + "}" * depth
    as_overrides = '{"graph": ' + json.dumps(JOB_SHEET) + ', "overrides": {"small.size": ' + nested + "}}"
    for body in ('{"graph": ' + nested + "}", as_overrides):
        answer = client.post("/jobs", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code in (400, 422), (depth, answer.text[:200])
    assert client.get("/health").status_code == 200


def test_behind_a_reverse_proxy_its_public_address_is_let_through_and_no_other(service):
    app = create_app(service, token=TOKEN, origins=("https://art.example.org",))
    with TestClient(app, base_url="https://art.example.org", headers=AUTH) as proxied:
        page = {"Origin": "https://art.example.org"}
        assert proxied.get("/jobs", headers=page).status_code == 200  # Host and Origin: the public ones
        assert proxied.get("/jobs", headers={"Origin": "https://evil.example"}).status_code == 403
        rebound = proxied.get("/jobs", headers={"Host": "evil.example", "Origin": "https://evil.example"})
        assert rebound.status_code == 403
        assert proxied.get("/jobs", headers={"Host": "127.0.0.1:8765"}).status_code == 200  # the proxy itself
