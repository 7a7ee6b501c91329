"""End to end in a real browser: Debian's Chromium, headless, driven over the Chrome DevTools Protocol.

The session fixture installs Chromium with scripts/install-test-packages.sh when /usr/bin/chromium is missing
(Debian's package only; no browser download). The test opens the evidence map from file://, clicks heatmap cells
with real mouse events, checks the quotes in the detail panel, checks that hostile titles show as text (no dialog,
no injected element), uses the filters and the search box, and saves a screenshot to
outputs/screenshots/evidence_map.png.

The DevTools connection uses `websockets` (already installed: Prefect depends on it).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.codebook import load_codebook
from pipeline.export import write_exports
from pipeline.synth import build_matrix
from tests.test_export import XSS_QUOTE, XSS_TITLE, hostile_frames
from tests.test_synth import CODEBOOK

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_SCRIPT = REPO / "scripts" / "install-test-packages.sh"
SCREENSHOT = REPO / "outputs" / "screenshots" / "evidence_map.png"
TIMEOUT = 20.0
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-port=0", "--window-size=1400,1000",
]
POLICY_QUOTES = {
    "In recent years school‐to‐school collaboration in the English context has been promoted by a myriad of "
    "policy initiatives.",
    "Following this review we would put forward the following recommendations for policy:\n\n- In respect of "
    "top-down policy initiatives, incentivising schools to collaborate is not enough.",
}


class DevTools:
    """A minimal CDP client over one page's websocket; JavaScript dialogs are recorded and dismissed."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.socket = connect(url, max_size=None, open_timeout=TIMEOUT)
        self.last_id = 0
        self.events: list[dict[str, Any]] = []
        self.dialogs: list[str] = []

    def close(self) -> None:
        self.socket.close()

    def _post(self, method: str, params: dict[str, Any] | None = None) -> int:
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params or {}}))
        return self.last_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from Chromium in time")
        message = json.loads(self.socket.recv(timeout=remaining))
        if message.get("method") == "Page.javascriptDialogOpening":
            self.dialogs.append(message["params"].get("message", ""))
            self._post("Page.handleJavaScriptDialog", {"accept": False})
        if "method" in message:
            self.events.append(message)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        wanted = self._post(method, params)
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        for message in self.events:
            if message["method"] == event:
                return message
        while True:
            message = self._receive(deadline)
            if message.get("method") == event:
                return message

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the centre of the element."""
        box = self.js(
            f"(function () {{ var e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center', inline: 'center'}); var r = e.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; }())"
        )
        assert box is not None, f"no element matches {selector}"
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1})


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(INSTALL_SCRIPT), "/usr/bin/chromium", "chromium", "fonts-dejavu-core"], check=True, timeout=900)
    assert CHROMIUM.exists(), "scripts/install-test-packages.sh did not install /usr/bin/chromium"
    return CHROMIUM


def _devtools_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Chromium exited with code {process.returncode} before DevTools started")
        if port_file.exists() and port_file.read_text().strip():
            return int(port_file.read_text().split()[0])
        time.sleep(0.05)
    raise TimeoutError("Chromium did not open its DevTools port")


@pytest.fixture
def page(chromium: Path, tmp_path: Path) -> Iterator[DevTools]:
    profile = tmp_path / "chromium-profile"  # fresh for each test: no state, no first-run prompts
    log = (tmp_path / "chromium.log").open("wb")
    process = subprocess.Popen(
        [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        port = _devtools_port(profile, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as response:
            targets = json.load(response)
        target = next(t for t in targets if t["type"] == "page")
        devtools = DevTools(target["webSocketDebuggerUrl"])
        try:
            yield devtools
        finally:
            devtools.close()
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the Chromium we started: its own process group (start_new_session), by its id."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _quotes(page: DevTools) -> list[str]:
    return page.js("Array.from(document.querySelectorAll('#detail .quote'))"
                   ".map(function (q) { return q.textContent; })")


def _cell(code: str, value: str) -> str:
    return f'#heatmap td.cell[data-code="{code}"][data-value="{value}"]'


def test_evidence_map_in_a_real_browser(page: DevTools, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assignments, studies = hostile_frames()
    codebook = load_codebook(CODEBOOK)
    matrix = build_matrix(assignments, studies, codebook)
    (html,) = write_exports(matrix, None, tmp_path / "outputs", formats=("html",))

    page.call("Page.enable")
    page.call("Runtime.enable")
    page.call("Emulation.setDeviceMetricsOverride",
              {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    page.call("Page.navigate", {"url": html.resolve().as_uri()})
    page.wait_for("Page.loadEventFired")

    # The heatmap: every code a row, grouped by category; a gap is an empty cell.
    assert page.js("document.querySelectorAll('#heatmap tbody th.code').length") == len(codebook.codes)
    assert page.js("document.querySelectorAll('#heatmap tr.category').length") == 4
    assert page.js(f"document.querySelector('{_cell('reasons.policy_mandate', 'England')}').textContent") == "2"
    assert page.js(f"document.querySelector('{_cell('reasons.isolation', 'England')}').className") == "cell gap"

    # Click a cell: the detail panel lists its two studies and their quotes, with who coded them.
    page.click(_cell("reasons.policy_mandate", "England"))
    assert set(_quotes(page)) == POLICY_QUOTES
    assert page.js("document.querySelectorAll('#detail article.study').length") == 2
    who = page.js("Array.from(document.querySelectorAll('#detail .who')).map(function (w) { return w.textContent; })")
    assert who == ["coded by rule \u00b7 confidence 0.90", "coded by rule \u00b7 confidence 0.85"]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = page.call("Page.captureScreenshot", {"format": "png"})
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))

    # The hostile study: its title and quote show as text; nothing ran and no element was injected.
    page.click(_cell("facilitators.trust_relationships", "Wales"))
    assert page.js("document.querySelector('#detail .study-title').textContent") == XSS_TITLE
    assert _quotes(page) == [XSS_QUOTE]
    assert page.js("document.querySelector('#detail .who').textContent") == (
        "coded by reviewer: <img src=x onerror=alert(3)> \u00b7 confidence 1.00")
    assert page.js("document.querySelectorAll('img, iframe').length") == 0
    assert page.js("document.querySelectorAll('script').length") == 2
    assert page.dialogs == []

    # Filters and search recount the cells.
    page.js("var m = document.getElementById('method'); m.value = 'reviewer';"
            " m.dispatchEvent(new Event('change'))")
    assert page.js(f"document.querySelector('{_cell('reasons.policy_mandate', '*')}').textContent") == ""
    assert page.js(f"document.querySelector('{_cell('facilitators.trust_relationships', '*')}').textContent") == "1"
    page.click("#reset")
    page.js("var s = document.getElementById('search'); s.value = 'myriad';"
            " s.dispatchEvent(new Event('input'))")
    counted = page.js("Array.from(document.querySelectorAll('#heatmap td.cell:not(.gap)'))"
                      ".map(function (c) { return c.dataset.code + '@' + c.dataset.value + '=' + c.textContent; })")
    assert counted == ["reasons.policy_mandate@England=1", "reasons.policy_mandate@*=1"]

    # Another facet: designs as columns.
    page.js("var f = document.getElementById('facet'); f.value = 'design'; f.dispatchEvent(new Event('change'))")
    headers = page.js("Array.from(document.querySelectorAll('#heatmap thead th')).map(function (h) {"
                      " return h.textContent; })")
    assert headers[1:] == ["review", "case_study", "qualitative", "conceptual", "All"]
    assert page.dialogs == []

    with capsys.disabled():
        print(f"\nevidence map screenshot: {SCREENSHOT}")
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")


def test_agreement_section_in_a_real_browser(page: DevTools, tmp_path: Path) -> None:
    from pipeline.agreement import agreement_report
    from tests.test_export import HOSTILE_REVIEWER, hand_ledger, sheet_frames

    assignments, studies = sheet_frames()
    ledger = hand_ledger(assignments)
    agreement = agreement_report(ledger, assignments)
    matrix = build_matrix(assignments, studies, load_codebook(CODEBOOK))
    (html,) = write_exports(matrix, None, tmp_path / "outputs", formats=("html",), agreement=agreement)

    page.call("Page.enable")
    page.call("Runtime.enable")
    page.call("Page.navigate", {"url": html.resolve().as_uri()})
    page.wait_for("Page.loadEventFired")

    assert page.js("document.getElementById('agreement-section').hidden") is False
    titles = page.js("Array.from(document.querySelectorAll('#agreement h3')).map(function (h) {"
                     " return h.textContent; })")
    assert titles == ["Reviewer vs reviewer", "All reviewers", "Machine vs reviewers", "Rule precision",
                      "Code precision"]
    first = page.js("Array.from(document.querySelectorAll('table.agreement[data-table=reviewer_pairs] tbody tr')[0]"
                    ".cells).map(function (c) { return c.textContent; })")
    assert first[:6] == [HOSTILE_REVIEWER, "ana", "(all codes)", "8", "5", "62.5%"]
    assert page.js("document.querySelector('table.agreement tbody tr').className") == "overall"
    rows = page.js("document.querySelectorAll('table.agreement[data-table=code_precision] tbody tr').length")
    assert rows == len(agreement["code_precision"])
    # The hostile reviewer name is text: no image element, no dialog.
    assert page.js("document.querySelectorAll('img, iframe').length") == 0
    assert page.dialogs == []
