"""The staff console end to end in Debian's Chromium, against make serve's gunicorn (2 workers) on
a copy of the notices and the index: sign in, try an answer and read why, find a question the
widget declined in 待处理, label it, and the widget answers it from that item with no restart;
undo; the CSV downloads; the chart renders; an upload shows its structure first; a question
holding HTML is text; axe-core finds no violations."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from bench._serve import gunicorn
from knowledge.store import NOTICES_DIR

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PASSWORD = "a-long-staff-password"
XSS = "<img src=x onerror=alert(1)>图书馆的咖啡好喝吗"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _ask(base: str, sender: str, message: str) -> dict:
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(base + "/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())[-1]


def _axe(page) -> list:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa']})).violations")
    return [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result]


@pytest.fixture(scope="module")
def served(index_dir, tmp_path_factory):
    from bot.convlog import upgrade
    from bot.staff import StaffAccounts

    root = tmp_path_factory.mktemp("staff-site")
    shutil.copytree(NOTICES_DIR, root / "notices")
    shutil.copytree(index_dir, root / "index", symlinks=True)
    url = f"sqlite:///{root / 'log.sqlite3'}"
    upgrade(url)
    StaffAccounts(url).add("王芳", PASSWORD)
    env = dict(os.environ, LIBRARY_DIR=str(root / "notices"), INDEX_DIR=str(root / "index"), DATABASE_URL=url,
               RATE_LIMITS="off")
    with gunicorn(env, root / "gunicorn.log") as base:
        yield base, root


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                                      bypass_csp=True)  # only so that axe-core can be injected
        yield context.new_page()
        browser.close()


def test_the_console_end_to_end(served, page, tmp_path):
    base, root = served
    # a citizen's question the notice does not answer, and one holding markup
    assert _ask(base, "citizen", "图书馆的咖啡好喝吗")["custom"]["abstained"] is True
    _ask(base, "citizen-2", XSS)

    page.goto(base + "/staff/")
    assert page.url.endswith("/staff/login")
    assert _axe(page) == []
    page.fill("#username", "王芳")
    page.fill("#password", "wrong-password")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "不正确" in page.inner_text("#login-error")
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_url(base + "/staff/")

    # 试一试
    page.fill("#try-input", "应急广播建设进展如何")
    page.click("#try-form button[type=submit]")
    why = page.wait_for_selector(".why")
    assert "第16条" in why.inner_text() and "把握" in why.inner_text()
    # the reply exactly as the widget shows it, drawn by widget.js itself: the lead, the quoted
    # sentences as a list, 出处 and the related questions, which ask again through 试一试
    reply = page.locator("#try-log .turn").first.locator(".zgqa-reply")
    assert "第16条" in reply.locator(".bubble .lead").inner_text()
    assert reply.locator(".bubble ul.quotes > li").count() >= 1
    assert reply.locator(".sources summary").first.inner_text() == "第16条 大力推进应急广播系统建设"
    assert page.locator("#zgqa-widget-host").count() == 0  # no launcher on the console
    chip = reply.locator(".related .chip").first
    asked = chip.inner_text()
    chip.click()
    second = page.locator("#try-log .turn").nth(1)
    second.locator(".why").wait_for()
    assert second.locator(".asked").inner_text() == "问：" + asked
    assert second.locator(".zgqa-reply .bubble").count() >= 1
    assert _axe(page) == []
    page.locator("#try-log .turn").first.scroll_into_view_if_needed()
    page.screenshot(path=str(REPO / "bench" / "screenshots" / "staff-try.png"), full_page=False)

    # 群众提问: the markup is text, the chart renders, the CSV downloads
    page.click("#tab-turns")
    page.wait_for_selector("#turn-rows tr")
    assert page.locator("#turn-rows img").count() == 0
    assert XSS in page.inner_text("#turn-rows")
    page.wait_for_function("document.getElementById('chart').complete && document.getElementById('chart').naturalWidth > 0")
    page.wait_for_function("document.getElementById('chart').alt.includes('个问题')")  # its text alternative
    with page.expect_download() as download:
        page.click("#csv")
    saved = tmp_path / "turns.csv"
    download.value.save_as(saved)
    assert "图书馆的咖啡好喝吗" in saved.read_text(encoding="utf-8-sig")
    assert _axe(page) == []

    # 待处理: label the declined question with item 10
    page.click("#tab-teach")
    group = page.locator(".group", has_text="图书馆的咖啡好喝吗").first
    group.wait_for()
    page.wait_for_function("document.querySelectorAll('.group select option').length > 10")
    group.locator("select").select_option("item-10")
    group.locator(".do-label").click()
    page.wait_for_selector(".group .note:has-text('已标注')")
    assert _axe(page) == []

    # the widget answers it from item 10 within seconds, in every worker, no restart, before the
    # index built in the background is in (new connections reach both workers: the one that took
    # the label answers with it at once, the other when it next looks at the notices' files)
    deadline, in_a_row, cited = time.monotonic() + 30, 0, []
    while in_a_row < 6 and time.monotonic() < deadline:
        reply = _ask(base, f"after-{time.monotonic()}", "图书馆的咖啡好喝吗")
        cited = [c["anchor"] for c in reply["custom"]["citations"]]
        in_a_row = in_a_row + 1 if cited[:1] == ["item-10"] else 0
        if not in_a_row:
            time.sleep(1)
    assert in_a_row == 6, cited

    # undo
    page.wait_for_selector("#labels li button")
    page.click("#labels li button")
    page.wait_for_selector("#labels li:has-text('已撤销')")
    assert "图书馆的咖啡好喝吗" not in (root / "notices" / "qingyuan-wlj-xuncha-2025" / "questions.tsv").read_text(encoding="utf-8")

    # 通报: an upload shows what was read before anything goes live
    page.click("#tab-notices")
    page.wait_for_selector("#notice-rows tr")
    hexi = REPO / "tests" / "data" / "library" / "hexi-wjj-xuncha-2025" / "notice.txt"
    page.fill("#u-doc", "hexi-wjj-xuncha-2025")
    page.fill("#u-title", "关于市委第三轮巡察整改进展情况的通报")
    page.fill("#u-issuer", "中共河西市卫生健康局党组")
    for field, value in (("#u-date", "2025-09-01"), ("#u-start", "2025-09-01"), ("#u-end", "2025-09-30")):
        page.fill(field, value)
    page.fill("#u-text", hexi.read_text(encoding="utf-8"))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#preview:not([hidden])")
    assert "第1条" in page.inner_text("#structure")
    assert not (root / "notices" / "hexi-wjj-xuncha-2025").exists()
    assert _axe(page) == []
    page.screenshot(path=str(REPO / "bench" / "screenshots" / "staff-console.png"), full_page=False)
