"""The app in a real browser: headless Chromium (Debian's package) driven by Playwright.

The app is started as a user starts it (``python app.py``) on the shipped demo model
``tiny-trained-llama`` (readable text, offline) with a fresh ``ODESTEER_CACHE``, on a free port. The tests type a prompt,
click Generate, wait for the three streamed columns and the plotly plots, move the token slider
(mouse drag and number box) and check that the trajectory plot follows; an empty prompt must give
a clear error toast and leave the app serving. Screenshots go to ``$ODESTEER_SCREENSHOTS`` (the
README's are in ``assets/screenshots``) or to pytest's temporary folder.

Run only these: ``python -m pytest -m browser tests/test_browser.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright is not installed (pip install -r requirements-dev.txt)",
)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ODESTEER_CHROMIUM") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
)
START_TIMEOUT_S = 90  # a slow shared 2-core machine: model build + concept fit + launch
GENERATE_TIMEOUT_MS = 60_000
REPLOT_TIMEOUT_MS = 10_000
VIEWPORT = {"width": 1400, "height": 1000}
PROMPT = "How did the dinner party at Sam's go?"  # a held-out prompt for the default concept
ARMS = ("none", "one_step", "odesteer")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM or not Path(CHROMIUM).exists(),
        reason="Debian chromium not found at /usr/bin/chromium (apt-get install chromium; "
        "Playwright's own browser download is not used); set ODESTEER_CHROMIUM to another binary",
    ),
]

TITLE_JS = """sel => Array.from(document.querySelectorAll(`${sel} .gtitle, ${sel} .annotation-text`))
    .map(t => t.textContent).join(' | ')"""
OPAQUE_JS = """text => {
    const hits = Array.from(document.querySelectorAll('body *')).filter(
        e => e.children.length === 0 && e.textContent.toLowerCase().includes(text));
    return hits.some(e => { for (let n = e; n; n = n.parentElement)
        if (parseFloat(getComputedStyle(n).opacity) < 1) return false; return true; });
}"""
ARMS_FILLED_JS = """arms => arms.every(a => {
    const spans = document.querySelectorAll(`#arm-${a} .arm-text span:not(.arm-empty)`);
    return spans.length > 0 && Array.from(spans).some(s => s.textContent.trim().length > 0);
})"""


# -- the app and the browser -----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-n:])


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """``python app.py`` on the shipped demo model, offline, on a free port; (url, log path)."""
    work = tmp_path_factory.mktemp("browser-app")
    log_path = work / "app.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_SERVER_",))}
    env.pop("ODESTEER_SMOKE", None)  # CI exports it; the app would stop after one call
    env.update(
        ODESTEER_MODEL="tiny-trained-llama",
        ODESTEER_CACHE=str(work / "cache"),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() - started > START_TIMEOUT_S:
                pytest.fail(f"app.py did not serve within {START_TIMEOUT_S} s:\n{_tail(log_path)}")
            time.sleep(0.5)
        print(f"\napp serving after {time.monotonic() - started:.1f} s at {url}")
        yield url, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Screenshot folder: ``$ODESTEER_SCREENSHOTS`` if set, else a temporary one."""
    env = os.environ.get("ODESTEER_SCREENSHOTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser, url: str):
    """A fresh page on the app, with uncaught page errors collected in ``page.js_errors``."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.js_errors = []
    page.on("pageerror", lambda err: page.js_errors.append(str(err)))
    page.goto(url + "/")
    page.wait_for_selector("#arm-none")
    page.wait_for_selector("#trajectory-plot")
    return page


@pytest.fixture
def page(browser, app_server):
    page = _open(browser, app_server[0])
    yield page
    page.context.close()


def _prompt_box(page):
    return page.get_by_label("Prompt", exact=True)


def _generate(page, prompt: str) -> tuple[float, float]:
    """Type the prompt, click Generate, wait for three non-empty columns and the final plots.

    Returns seconds from the click to the first tokens of all three columns, and to the end.
    """
    _prompt_box(page).fill(prompt)
    started = time.monotonic()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function(ARMS_FILLED_JS, arg=list(ARMS), timeout=GENERATE_TIMEOUT_MS)
    first = time.monotonic() - started
    # The last update enables the token slider and draws both plots.
    page.wait_for_selector(
        "#token-slider input[type=range]:not([disabled])", timeout=GENERATE_TIMEOUT_MS
    )
    for plot in ("#trajectory-plot", "#barrier-plot"):
        page.wait_for_selector(f"{plot} .js-plotly-plot .main-svg", timeout=GENERATE_TIMEOUT_MS)
        page.wait_for_selector(f"{plot} .js-plotly-plot .scatterlayer .trace", state="attached")
    return first, time.monotonic() - started


def _title(page, plot: str = "#trajectory-plot") -> str:
    return page.evaluate(TITLE_JS, plot)


def _wait_title_change(page, old: str, timeout: int = REPLOT_TIMEOUT_MS) -> str:
    page.wait_for_function(
        f"([sel, old]) => {{ const now = ({TITLE_JS})(sel); return now && now !== old; }}",
        arg=["#trajectory-plot", old],
        timeout=timeout,
    )
    return _title(page)


def _wait_token(page, token: int, timeout: int = REPLOT_TIMEOUT_MS) -> str:
    """Wait until the trajectory plot shows ``token`` (1-based, as on the slider): replots of
    intermediate slider positions may land first."""
    page.wait_for_function(
        f"([sel, want]) => {{ const now = ({TITLE_JS})(sel); "
        "return now && new RegExp('token ' + want + '/').test(now); }",
        arg=["#trajectory-plot", str(token)],
        timeout=timeout,
    )
    return _title(page)


def _shown_token(title: str) -> tuple[int, int]:
    """(token number, token count) from a title like "PCA of the clouds: token 3/48 'fu'"."""
    match = re.search(r"token (\d+)\s*/\s*(\d+)", title)
    assert match, f"no 'token i/n' in the trajectory plot's title: {title!r}"
    return int(match[1]), int(match[2])


def _slider(page):
    root = page.locator("#token-slider")
    return root.locator("input[type=range]"), root.locator("input[type=number]")


def _plots_row_screenshot(page, path: Path) -> None:
    """Screenshot of the innermost row holding both plots."""
    row = (
        page.locator("div.row")
        .filter(has=page.locator("#trajectory-plot"))
        .filter(has=page.locator("#barrier-plot"))
        .last
    )
    row.scroll_into_view_if_needed()
    row.screenshot(path=path, animations="disabled")


@pytest.fixture(scope="module")
def compared_page(browser, app_server):
    """One page with a finished comparison, shared by the slider and layout tests."""
    page = _open(browser, app_server[0])
    try:
        first, total = _generate(page, PROMPT)
        print(f"\nthree columns non-empty after {first:.2f} s; comparison + plots {total:.2f} s")
        yield page
    finally:
        page.context.close()


# -- tests -----------------------------------------------------------------------------------
def test_empty_prompt_shows_error_and_app_keeps_serving(page, shots):
    page.get_by_role("button", name="Generate", exact=True).click()
    toast = page.get_by_text(re.compile("prompt is empty", re.IGNORECASE))
    toast.first.wait_for(state="visible", timeout=15_000)
    page.wait_for_function(OPAQUE_JS, arg="prompt is empty")  # the toast has faded in
    page.screenshot(path=shots / "empty-prompt-error.png", animations="disabled")
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "ValueError" not in body, "a stack trace reached the UI"
    for arm in ARMS:  # nothing was generated
        assert not page.locator(f"#arm-{arm} .arm-text span:not(.arm-empty)").count()

    # The app keeps serving: a valid prompt right after works, in the same page.
    first, total = _generate(page, PROMPT)
    print(f"\nafter the error: columns non-empty in {first:.2f} s, done in {total:.2f} s")
    for arm in ARMS:
        assert page.locator(f"#arm-{arm} .arm-text").inner_text().strip()
    assert _shown_token(_title(page))[0] in (0, 1)
    assert not page.js_errors, page.js_errors


def test_three_columns_readouts_and_plots(compared_page):
    page = compared_page
    boxes = [page.locator(f"#arm-{arm}").bounding_box() for arm in ARMS]
    assert all(boxes), "an arm column is not rendered"
    for left, right in zip(boxes, boxes[1:]):  # side by side, in order, not overlapping
        assert abs(left["y"] - right["y"]) < 20, boxes
        assert left["x"] + left["width"] <= right["x"] + 1, boxes
    for arm in ARMS:
        text = page.locator(f"#arm-{arm} .arm-text").inner_text().strip()
        assert text and text != "…", f"column {arm} is empty"
        readout = page.locator(f"#readout-{arm}").inner_text()
        assert re.search(r"mean h: [+-]\d+\.\d\d · positive side: \d+%", readout), readout
    status = page.locator("#status").inner_text()
    assert "tokens per arm" in status, status
    notice = page.get_by_text("Demo model: a tiny Llama").first
    assert notice.is_visible()
    assert notice.bounding_box()["y"] < boxes[0]["y"], "the model's notice should precede outputs"
    quality = page.locator("#barrier-quality").inner_text()
    assert re.search(r"Barrier at layer \d+: held-out accuracy 0\.\d\d", quality), quality
    title = _title(page)
    number, count = _shown_token(title)
    assert number in (0, 1) and count >= 1, title
    assert _title(page, "#barrier-plot"), "barrier plot has no title"
    reliability = _title(page, "#reliability")  # drawn, not a blank plot in its accordion
    assert reliability.startswith("Reliability: accuracy 0."), reliability
    assert page.locator("#reliability").bounding_box()["height"] > 150
    legend = page.locator("#trajectory-plot .legend .traces")
    assert legend.count() >= 4, "trajectory legend should list both clouds, path, start, end"
    assert not page.js_errors, page.js_errors


def test_token_slider_replots_trajectory(compared_page, shots):
    page = compared_page
    rng, number = _slider(page)
    maximum = int(rng.get_attribute("max"))
    assert maximum >= 2, "need at least three tokens to move the slider"
    before_barrier = _title(page, "#barrier-plot")

    # A user drags the thumb to the middle of the track (pointerup = the slider's release).
    rng.scroll_into_view_if_needed()
    box = rng.bounding_box()  # viewport coordinates, as page.mouse uses
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    page.mouse.up()
    dragged = int(rng.input_value())
    assert 0 < dragged <= maximum
    assert dragged > 1
    after_drag = _wait_token(page, dragged)
    assert _shown_token(after_drag) == (dragged, maximum), (dragged, after_drag)
    assert _title(page, "#barrier-plot") != before_barrier, "barrier plot did not follow"

    # Or types a token index into the slider's number box (blur = release).
    target = 1 if dragged != 1 else 2
    number.fill(str(target))
    started = time.monotonic()
    number.press("Tab")
    after_number = _wait_token(page, target)
    replot_s = time.monotonic() - started
    print(f"\ntoken-slider replot in the browser: {replot_s * 1000:.0f} ms")
    assert int(rng.input_value()) == target
    assert _shown_token(after_number)[0] == target, after_number

    # Back to the middle for the README's screenshots.
    number.fill(str(dragged))
    number.evaluate("e => e.blur()")  # no focus ring in the pictures
    _wait_token(page, dragged)
    page.mouse.move(0, 0)  # no hover labels in the pictures
    page.screenshot(path=shots / "app.png", full_page=True, animations="disabled")
    _plots_row_screenshot(page, shots / "trajectory.png")
    assert not page.js_errors, page.js_errors


def test_token_slider_keyboard_replots(compared_page):
    page = compared_page
    rng, _ = _slider(page)
    before, value = _title(page), int(rng.input_value())
    key = "ArrowRight" if value < int(rng.get_attribute("max")) else "ArrowLeft"
    rng.focus()
    page.keyboard.press(key)
    assert int(rng.input_value()) != value, "the arrow key did not move the slider"
    try:
        _wait_title_change(page, before, timeout=3_000)
    except sync_api.TimeoutError:
        pytest.fail(f"{key} moved the token slider to {rng.input_value()}; the plot did not follow")


def test_arm_text_stays_inside_its_column(compared_page):
    widths = compared_page.evaluate(
        """arms => arms.map(a => { const t = document.querySelector(`#arm-${a} .arm-text`);
            return [a, t.scrollWidth, t.clientWidth]; })""",
        list(ARMS),
    )
    overflowing = [(arm, s, c) for arm, s, c in widths if s > c + 1]
    assert not overflowing, f"text wider than its column (arm, scrollWidth, clientWidth): {widths}"


def test_app_log_has_no_unexpected_errors(app_server):
    """Server side: only the user errors these tests provoked (empty prompt) may be logged."""
    log = app_server[1].read_text(errors="replace")
    blocks = log.split("Traceback (most recent call last):")[1:]
    unexpected = [b for b in blocks if "prompt is empty" not in b.lower()]
    assert not unexpected, "unexpected tracebacks in the app's log:\n" + "\n---\n".join(
        b.strip()[-1500:] for b in unexpected
    )
    assert "ERROR" not in log.replace("gradio.exceptions.Error", ""), _tail(app_server[1])
