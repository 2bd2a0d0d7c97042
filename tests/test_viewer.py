"""The viewer in a real browser: Debian's Chromium driven by Playwright, against real servers.

`.ci/run` installs Chromium and sets ARTGRAPH_REQUIRE_BROWSER=1, so in CI a missing
browser fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from tests.conftest import JOB_SEARCH, JOB_SHEET
from tests.serving import Server, cli

WAIT_MS = 60_000


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    required = os.environ.get("ARTGRAPH_REQUIRE_BROWSER") == "1"
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("playwright is not installed (pip install -e '.[dev]')")
        pytest.skip("playwright is not installed")
    if executable is None:
        if required:
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


class Page:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def node(self, node_id: str, state: str) -> None:
        """Wait until the graph draws ``node_id`` in ``state``."""
        self.page.wait_for_selector(f'g.node[data-node="{node_id}"].{state}', timeout=WAIT_MS)

    def loaded(self, image: Any) -> None:
        """Wait until the <img> ``image`` (a handle or locator) shows a decoded picture."""
        handle = image.element_handle() if hasattr(image, "element_handle") else image
        self.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=handle, timeout=WAIT_MS)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Page]:
    page = Page(browser)
    yield page
    page.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from PIL import Image

    data = tmp_path_factory.mktemp("viewer") / "data"
    (data / "uploads").mkdir(parents=True)
    Image.new("RGB", (16, 12), (200, 120, 40)).save(data / "uploads" / "photo.png")
    (data / "uploads" / "broken.png").write_bytes(b"not a picture")
    running = Server(data, "--token", "tok")
    running.http.headers["Authorization"] = "Bearer tok"
    yield running
    running.kill(signal.SIGTERM)


def test_a_job_page_shows_nodes_wait_run_finish_and_the_preview_change(server, tab):
    blocker = server.submit(JOB_SEARCH)  # holds the worker, so the next job waits in the queue
    job = server.submit(JOB_SEARCH, overrides={"search.generations": 8000})  # a few seconds: several previews
    tab.page.goto(f"{server.url}/view/{job}?token=tok")
    assert "token" not in tab.page.url  # the session cookie replaced it
    tab.node("search", "waiting")
    assert "Queued" in tab.page.inner_text("#banner")
    server.http.post(f"/jobs/{blocker}/cancel")
    tab.node("search", "running")
    preview = tab.page.wait_for_selector('.card[data-node="search"] .preview img', timeout=WAIT_MS)
    first = preview.get_attribute("src")
    tab.page.wait_for_function(
        """(first) => {
            const img = document.querySelector('.card[data-node="search"] .preview img');
            return img && img.getAttribute('src') !== first;
        }""",
        arg=first,
        timeout=WAIT_MS,
    )
    tab.node("search", "done")
    tab.node("save", "done")
    tab.page.wait_for_selector("#status.done", timeout=WAIT_MS)
    assert tab.page.locator('.card[data-node="search"] canvas').count() == 1  # its history, charted
    tab.loaded(tab.page.wait_for_selector('.card[data-node="save"] .outputs img', timeout=WAIT_MS))
    cookies = {c["name"]: c for c in tab.context.cookies()}
    (session,) = [c for name, c in cookies.items() if name.startswith("artgraph-")]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and "tok" not in session["value"]
    assert tab.errors == []


def test_a_failed_node_shows_its_message_and_its_traceback_one_click_away(server, tab):
    job = server.submit(JOB_SHEET, overrides={"photo.path": "uploads/broken.png"})
    tab.page.goto(f"{server.url}/view/{job}?token=tok")
    tab.node("photo", "failed")
    message = tab.page.wait_for_selector('.card[data-node="photo"] .message', timeout=WAIT_MS)
    assert "broken.png" in message.inner_text()
    details = tab.page.locator('.card[data-node="photo"] details')
    assert not details.evaluate("d => d.open")
    details.locator("summary").click()
    assert "Traceback" in details.locator("pre").inner_text()
    tab.node("save", "skipped")
    tab.page.wait_for_selector("#status.failed", timeout=WAIT_MS)
    assert "photo" in tab.page.inner_text("#banner")
    assert tab.errors == []


def test_the_jobs_page_needs_the_token_and_then_lists_jobs_with_thumbnails(server, tab):
    job = server.submit(JOB_SHEET)
    server.wait_for(job, lambda j: j["status"] == "done")
    tab.page.goto(f"{server.url}/")
    tab.page.wait_for_selector("#banner:not([hidden])", timeout=WAIT_MS)
    assert "needs its token" in tab.page.inner_text("#banner")
    assert tab.page.locator("table.jobs").count() == 0  # nothing of the jobs without it
    tab.page.goto(f"{server.url}/?token=tok")
    link = tab.page.wait_for_selector(f'a[href="/view/{job}"]', timeout=WAIT_MS)
    assert "sheet" in link.inner_text()
    row = tab.page.locator("tr", has=tab.page.locator(f'a[href="/view/{job}"]'))
    tab.loaded(row.locator("img"))
    link.click()
    tab.node("save", "done")
    tab.errors[:] = [e for e in tab.errors if "401" not in e]  # the refused fetch before the token
    assert tab.errors == []


def test_an_unknown_job_and_a_missing_preview_are_said_on_the_page(server, tab):
    tab.page.goto(f"{server.url}/view/no-such-job?token=tok")
    tab.page.wait_for_selector("text=no job 'no-such-job'", timeout=WAIT_MS)
    job = server.submit(JOB_SEARCH, overrides={"search.generations": 300})
    server.wait_for(job, lambda j: j["status"] == "done")
    for preview in (server.data / "jobs" / job / "previews").iterdir():
        preview.unlink()
    tab.page.goto(f"{server.url}/view/{job}")
    tab.page.wait_for_selector('.card[data-node="search"] .missing', timeout=WAIT_MS)
    assert "not available" in tab.page.inner_text('.card[data-node="search"]')


def test_the_page_says_when_the_server_goes_away_and_recovers_when_it_is_back(tmp_path, browser, data):
    first = Server(data)
    job = first.submit(JOB_SHEET)
    first.wait_for(job, lambda j: j["status"] == "done")
    tab = Page(browser)
    try:
        tab.page.goto(f"{first.url}/view/{job}")
        tab.node("save", "done")
        job2 = first.submit(JOB_SEARCH, overrides={"search.generations": 100000})
        tab.page.goto(f"{first.url}/view/{job2}")
        tab.node("search", "running")
        first.kill(signal.SIGKILL)
        tab.page.wait_for_selector("#banner.error", timeout=WAIT_MS)
        assert "reconnecting" in tab.page.inner_text("#banner")
        again = Server(data, port=first.port)
        try:
            tab.page.wait_for_function(
                "() => document.querySelector('#banner').hidden || !/reconnecting/.test("
                "document.querySelector('#banner').textContent)",
                timeout=WAIT_MS,
            )
            tab.node("search", "running")  # the job runs again and the page follows it
            again.http.post(f"/jobs/{job2}/cancel")
            tab.node("search", "cancelled")
        finally:
            again.kill(signal.SIGTERM)
    finally:
        tab.close()


def test_artgraph_view_replays_a_finished_cli_run(tmp_path, tab, tiny_png):
    graph = tmp_path / "sheet.yaml"
    graph.write_text(JOB_SHEET.replace("uploads/photo.png", str(tiny_png.name)))
    assert tiny_png.parent == tmp_path  # beside the graph, where it reads it
    run = tmp_path / "run"
    done = cli("run", str(graph), "--out", str(run), "--events", str(run / "events.jsonl"), "--no-cache")
    assert done.returncode == 0, done.stderr
    with open(run / "events.jsonl", "a") as log:
        log.write('{"event": "progress", "run": "x", "se')  # a line still being written
    proc = subprocess.Popen(
        [sys.executable, "-m", "artgraph.cli", "view", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("http://127.0.0.1:") and "/view/run?token=" in address
        tab.page.goto(address)
        tab.node("save", "done")
        tab.node("photo", "done")
        tab.loaded(tab.page.wait_for_selector('.card[data-node="save"] .outputs img', timeout=WAIT_MS))
        tab.page.wait_for_selector("#status.done", timeout=WAIT_MS)
        assert tab.errors == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_artgraph_view_of_a_folder_that_does_not_exist_says_so(tmp_path):
    missing = cli("view", str(tmp_path / "nowhere"), timeout=60)
    assert missing.returncode == 2 and "no run folder" in missing.stderr and "Traceback" not in missing.stderr


def test_a_thousand_node_graph_is_drawn_and_stays_responsive(server, tab):
    nodes = ["  n0: {type: image.load, params: {path: uploads/photo.png}}"]
    nodes += [
        f"  n{i}: {{type: image.resize, inputs: {{image: n{i - 1}.image}}, params: {{size: 8}}}}"
        for i in range(1, 1000)
    ]
    job = server.submit("artgraph: 1\nname: thousand\nnodes:\n" + "\n".join(nodes) + "\n")
    tab.page.goto(f"{server.url}/view/{job}?token=tok")
    tab.page.wait_for_function("() => document.querySelectorAll('g.node').length === 1000", timeout=WAIT_MS)
    tab.node("n999", "done")
    started = time.monotonic()
    tab.page.click('g.node[data-node="n0"]')
    tab.page.wait_for_selector('.card.selected[data-node="n0"]', timeout=WAIT_MS)
    assert time.monotonic() - started < 5  # a sanity bound: a click answers at once here
    assert tab.errors == []


def test_run_view_prints_the_page_address_first(tmp_path, tiny_png):
    graph = tmp_path / "sheet.yaml"
    graph.write_text(JOB_SHEET.replace("uploads/photo.png", str(tiny_png.name)))
    assert tiny_png.parent == tmp_path  # beside the graph, where it reads it
    proc = subprocess.Popen(
        [sys.executable, "-m", "artgraph.cli", "run", str(graph), "--out", str(tmp_path / "o"), "--view", "--no-cache"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = []
        while proc.poll() is None and not any("stays at" in line for line in lines):
            lines.append(proc.stderr.readline())
        address = next(line for line in lines if "watch the run at" in line).split()[-1]
        import httpx

        page = httpx.get(address, follow_redirects=True, timeout=30)
        assert page.status_code == 200 and "viewer.js" in page.text
        assert (tmp_path / "o" / "events.jsonl").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert Path(tmp_path / "o" / "sheet.png").is_file()


def test_artgraph_view_follows_a_cli_run_that_starts_after_the_page(tmp_path, tab, tiny_png):
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "artgraph.cli", "view", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        tab.page.goto(proc.stdout.readline().strip())
        tab.page.wait_for_selector("#status.queued", timeout=WAIT_MS)
        tab.page.wait_for_selector("#banner:not([hidden])", timeout=WAIT_MS)
        assert "Waiting" in tab.page.inner_text("#banner")  # nothing written yet
        graph = tmp_path / "search.yaml"
        graph.write_text(JOB_SEARCH.replace("uploads/photo.png", tiny_png.name))
        events = str(run / "events.jsonl")
        overrides = ["--set", "search.generations=4000"]
        done = cli("run", str(graph), "--out", str(run), "--events", events, "--no-cache", *overrides)
        assert done.returncode == 0, done.stderr
        tab.node("search", "done")  # drawn from the run's own run_start, then followed to the end
        tab.page.wait_for_selector("#status.done", timeout=WAIT_MS)
        assert tab.page.locator('.card[data-node="search"] .preview img').count() == 1
        assert tab.errors == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
