"""Take the screenshots of docs/viewer.md: the viewer during a style transfer and a search.

    .venv/bin/python docs/screenshots.py            # writes docs/viewer/*.png

Starts an ``artgraph serve`` on a free loopback port with a throw-away data
folder, submits two shipped examples, and photographs their pages in Debian's
Chromium (driven by Playwright) while they run, then the list of jobs.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).parent / "viewer"
TOKEN = "screenshots"


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("docs/screenshots.py: needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="artgraph-shots-"))
    server = subprocess.Popen(
        [sys.executable, "-m", "artgraph.cli", "serve", "--port", "0", "--data", str(data), "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        transfer = submit(http, "style_transfer", {"transfer.steps": 200, "content.size": 128})
        search = submit(http, "evolve_triangles", {"search.generations": 4000})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 820})
            page.goto(f"{url}/view/{transfer}?token={TOKEN}")
            shoot_when(page, http, transfer, "transfer", 0.45, OUT / "style_transfer.png")
            http.post(f"/jobs/{transfer}/cancel")
            page.goto(f"{url}/view/{search}")
            shoot_when(page, http, search, "search", 0.6, OUT / "search.png")
            wait_done(http, search)
            page.goto(f"{url}/")
            page.wait_for_selector("table.jobs img")
            time.sleep(1.0)
            page.screenshot(path=str(OUT / "jobs.png"))
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)
    for shot in sorted(OUT.glob("*.png")):
        print(f"wrote {shot}")
    return 0


def submit(http: httpx.Client, example: str, overrides: dict[str, object]) -> str:
    answer = http.post("/jobs", json={"graph": example, "overrides": overrides})
    answer.raise_for_status()
    return str(answer.json()["id"])


def shoot_when(page: Page, http: httpx.Client, job: str, node: str, fraction: float, path: Path) -> None:
    """Screenshot once ``node`` is ``fraction`` of the way through (its bar, in the page)."""
    page.wait_for_selector(f'g.node[data-node="{node}"].running', timeout=600_000)
    page.click(f'g.node[data-node="{node}"]')
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        text = page.inner_text(f'.card[data-node="{node}"] .metrics') or ""
        done, _, rest = text.partition(" / ")
        if done.strip().isdigit() and rest and int(done) >= fraction * int(rest.split()[0]):
            break
        time.sleep(0.5)
    time.sleep(1.2)  # the newest preview, drawn
    page.screenshot(path=str(path))


def wait_done(http: httpx.Client, job: str) -> None:
    for _ in range(1200):
        if http.get(f"/jobs/{job}").json()["status"] in ("done", "failed", "cancelled"):
            return
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
