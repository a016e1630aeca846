"""The integration example (web/examples/embed.html) as an app would run it: the package from
`npm pack`, unpacked where `npm install` puts it, served with the page by a static server of
its own on another origin than the local stack, which the page reaches over CORS."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from devstack.stack import LocalStack
from tests.browser.conftest import Api

WEB = Path(__file__).resolve().parents[2] / "web"
PACKAGE = "@legal-aid/notifications-web"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def app_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An app's static server on 127.0.0.1 (a random port): the example page and the package."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    root = tmp_path_factory.mktemp("app")
    packed = subprocess.run(
        [npm, "pack", "--ignore-scripts", "--pack-destination", str(root)],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    tarball = root / packed.stdout.strip().splitlines()[-1]
    target = root / "node_modules" / PACKAGE
    with tarfile.open(tarball) as archive:
        archive.extractall(root / "unpacked", filter="data")
    target.parent.mkdir(parents=True)
    (root / "unpacked" / "package").rename(target)
    shutil.copy(WEB / "examples" / "embed.html", root / "index.html")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_example_page_on_another_origin_shows_a_pushed_notification(
    app_origin: str, stack: LocalStack, context: BrowserContext, api: Api
) -> None:
    assert app_origin.rsplit(":", 1)[1] != stack.rest_url.rsplit(":", 1)[1]
    user = f"embed-{uuid.uuid4().hex[:8]}"
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    lines: list[str] = []
    page.on("console", lambda m: lines.append(m.text) if m.type == "log" else None)
    page.goto(f"{app_origin}/index.html?stack={stack.rest_url}&user={user}")
    status = page.locator("notification-center")
    # Live once the socket registered (the center's status and its bell's name say so).
    page.wait_for_function(
        """() => {
            const center = document.querySelector('notification-center');
            return center && center.client && center.client.status === 'open';
        }"""
    )
    api.send(user, "Your hearing is on 3 March", type="warning")
    expect(page.locator("notification-toast .toast")).to_contain_text("Your hearing is on 3 March")
    expect(status.locator("notification-badge")).to_have_attribute("count", "1")
    status.locator("button.toggle").click()
    expect(status.locator("notification-list button.item")).to_contain_text("3 March")
    assert "new: Your hearing is on 3 March" in lines
    assert errors == []


def test_the_example_stays_about_twenty_lines() -> None:
    lines = (WEB / "examples" / "embed.html").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 24, len(lines)
