"""The search page in a real headless Chromium: upload, see the grid, click a result."""

import os

import pytest

from tests.serve.conftest import encode

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package (make test does, as root with apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_upload_then_click_a_result(browser, live_url, stack, tmp_path):
    query = tmp_path / "query.png"
    query.write_bytes(encode(stack.data.splits["test"].images[2]))
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_url + "/")
    page.wait_for_function("document.getElementById('gallery-info').textContent.includes('images')")

    page.set_input_files("#file", str(query))
    page.wait_for_selector("body[data-state=done]")
    hits = page.locator("#results .hit")
    assert hits.count() == 10
    assert page.locator("#query-title").text_content() == "query.png"
    page.wait_for_function("[...document.querySelectorAll('#results img')].every(i => i.complete)")
    assert page.locator("#results .hit img").first.evaluate("i => i.naturalWidth") == 256  # 16 px enlarged

    page.select_option("#k", "5")  # k applies to the next search
    third = hits.nth(2)
    row = third.get_attribute("data-row")
    third.click()
    page.wait_for_selector(f"#query[data-row='{row}']")
    page.wait_for_selector("body[data-state=done]")
    assert page.locator("#results .hit").count() == 5
    assert row not in [h.get_attribute("data-row") for h in page.locator("#results .hit").all()]
    page.wait_for_function("[...document.images].every(i => i.complete)")
    page.screenshot(path=str(tmp_path / "search-page.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'search-page.png'}")

    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("body[data-state=error]")
    assert "not an image" in page.locator("#message").text_content()
    assert page.locator("#results .hit").count() == 0 and page.locator("#query").is_hidden()

    page.click("#random")  # the page keeps working after an error
    page.wait_for_selector("body[data-state=done]")
    assert page.locator("#results .hit").count() == 5 and page.locator("#message").is_hidden()
    assert not errors, errors
    page.close()
