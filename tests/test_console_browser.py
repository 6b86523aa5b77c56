"""The staff console and the waiting-room display in headless Chromium (Debian's
`chromium`, driven by Playwright) against a started system: desk staff log in, check a
patient in by the code, call next; role gating and hospital isolation through the console
as through the API; no console errors (CSP violations included), every control reachable
by keyboard, the first-load weight recorded. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from gateway.static import DEFAULT_CONSOLE_DIR
from shared.rules import HOSPITAL_TZ
from shared.storage.testing import free_port
from tests.harness import Api
from tests.system_kit import (
    TOMORROW,
    Hospital,
    book,
    make_hospital,
    make_schedule,
    patient,
    todays_session,
)

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("GUAHAO_CHROMIUM", "/usr/bin/chromium")
DESK_PASSWORD = "desk-password-1"
ADMIN_SCREENS = ("/doctors", "/calendar", "/stats", "/webhooks", "/staff")
DESK_SCREENS = ("/board", "/checkin", "/queue", "/appointments")
FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), "
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])"
)


@dataclass
class Clinic:
    hospital: Hospital
    session: dict[str, Any]
    appointments: list[dict[str, Any]]
    patient_tokens: list[str]
    desk_username: str
    admin_username: str
    admin_password: str = "staff-password"

    @property
    def sid(self) -> str:
        return str(self.session["id"])


@dataclass
class Watched:
    """What a page said to its console: errors (CSP violations are errors) and crashes,
    with the URL each came from (for a failed request: the request's URL)."""

    errors: list[tuple[str, str]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = (message.location or {}).get("url") or page.url
                self.errors.append((where, message.text))

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append((page.url, str(exc))))


@pytest.fixture
def prerequisites() -> None:
    assert Path(CHROMIUM).exists(), "install Debian's chromium (`.ci/run` does)"
    assert (DEFAULT_CONSOLE_DIR / "index.html").is_file(), "run `make console` first"
    ARTIFACTS.mkdir(exist_ok=True)


@pytest.fixture
async def browser(prerequisites: None) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


async def add_staff(api: Api, h: Hospital, role: str) -> str:
    username = f"{role}_{uuid.uuid4().hex[:8]}"
    resp = await api.request(
        "POST",
        f"/admin/hospitals/{h.id}/staff",
        token=h.staff_token,
        json={"username": username, "password": DESK_PASSWORD, "role": role},
    )
    assert resp.status == 201, resp.body
    return username


async def make_clinic(api: Api, patients: int = 2) -> Clinic:
    h = await make_hospital(api)
    session = await todays_session(api, h, capacity=10)
    slot = session["slots"][0]["id"]
    appointments, tokens = [], []
    for n in range(patients):
        token, pid = await patient(api, 7000 + n + uuid.uuid4().int % 900)
        booked = await book(api, token, slot, pid)
        assert booked.status == 201, booked.body
        appointments.append(booked.body)
        tokens.append(token)
    staff = await api.request("GET", f"/admin/hospitals/{h.id}/staff", token=h.staff_token)
    assert staff.status == 200, staff.body
    admin_username = next(
        s["username"] for s in staff.body["items"] if s["role"] == "hospital_admin"
    )
    return Clinic(h, session, appointments, tokens, await add_staff(api, h, "desk"), admin_username)


async def login(page: Page, base: str, username: str, password: str) -> None:
    await page.goto(f"{base}/console/")
    user = page.locator('input[autocomplete="username"]')
    secret = page.locator('input[autocomplete="current-password"]')
    await expect(user).to_be_visible()
    await expect(secret).to_have_attribute("type", "password")
    await user.fill(username)
    await secret.fill(password)
    await secret.press("Enter")
    await expect(page.get_by_test_id("board")).to_be_visible()


async def open_screen(page: Page, path: str) -> None:
    await page.locator(f'nav a[href="/console{path}"]').click()
    await expect(page).to_have_url(re.compile(re.escape(path) + "$"))


async def test_desk_checks_a_patient_in_by_code_and_calls_next(api: Api, browser: Browser) -> None:
    c = await make_clinic(api)
    base = api.stack.gateway_url
    first = c.appointments[0]
    watched = Watched()
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    watched.attach(page)
    watched.attach(tv := await context.new_page())
    await login(page, base, c.desk_username, DESK_PASSWORD)
    await expect(page.get_by_test_id("role")).to_have_text("前台")

    # the today board: one session, both bookings
    card = page.locator(f'[data-testid="board-session"][data-schedule="{c.sid}"]')
    await expect(card.locator('[data-k="booked"]')).to_have_text("2")
    await expect(card.locator('[data-k="checked_in"]')).to_have_text("0")
    await page.screenshot(path=str(ARTIFACTS / "console-board.png"), full_page=True)

    # check-in by the patient's code, as a scanner types it (text + Enter)
    await open_screen(page, "/checkin")
    code = page.locator("#checkin-code input")
    await expect(code).to_be_focused()
    await code.fill("not-our-code!")
    await code.press("Enter")
    await expect(page.get_by_test_id("checkin-error")).to_contain_text("不是有效的签到码")
    await code.fill(f"guahao:checkin:{first['id']}")
    await code.press("Enter")
    result = page.get_by_test_id("checkin-result")
    await expect(result).to_contain_text(f"第 {first['seq_no']} 号")
    checked = await api.request("GET", f"/appointments/{first['id']}", token=c.patient_tokens[0])
    assert checked.body["status"] == "checked_in", checked.body

    await open_screen(page, "/board")
    await expect(card.locator('[data-k="checked_in"]')).to_have_text("1")

    # the second patient checks in at the appointments screen
    second = c.appointments[1]
    await open_screen(page, "/appointments")
    row = page.locator("tr", has_text=str(second["patient"]["id_number_masked"])).filter(
        has=page.get_by_role("button", name="签到")
    )
    await row.get_by_role("button", name="签到").click()
    await expect(page.get_by_role("status")).to_contain_text("已签到")

    async def my_queue(n: int) -> dict[str, Any]:
        resp = await api.request(
            "GET", f"/appointments/{c.appointments[n]['id']}/queue", token=c.patient_tokens[n]
        )
        assert resp.status == 200, resp.body
        return dict(resp.body)

    before = [await my_queue(0), await my_queue(1)]
    assert [q["status"] for q in before] == ["waiting", "waiting"], before
    assert (before[0]["position"], before[1]["position"], before[1]["ahead"]) == (1, 2, 1)

    # the queue desk: call next in room 3诊室
    await open_screen(page, "/queue")
    await expect(page.locator("#queue-session")).to_have_value(c.sid)
    await expect(page.get_by_test_id("waiting")).to_contain_text(f"{second['seq_no']} 号")
    await page.locator("#queue-room input").fill("3诊室")
    await page.get_by_test_id("call-next").click()
    await expect(page.get_by_test_id("queue-notice")).to_contain_text(f"请 {first['seq_no']} 号")
    await expect(page.get_by_test_id("queue-notice")).to_contain_text("3诊室")
    serving = page.get_by_test_id("now-serving")
    await expect(serving).to_contain_text(f"{first['seq_no']} 号")
    after = [await my_queue(0), await my_queue(1)]
    assert after[0]["status"] == "called" and after[0]["room"] == "3诊室", after
    assert after[1]["now_serving_seq"] == first["seq_no"], after
    assert (after[1]["position"], after[1]["ahead"]) == (1, 0), after  # moved up
    await page.screenshot(path=str(ARTIFACTS / "console-queue-desk.png"), full_page=True)

    # the waiting-room display of this session (no login): masked names only
    await tv.set_viewport_size({"width": 1920, "height": 1080})
    await tv.goto(f"{base}/display/{c.hospital.id}/{c.sid}")
    await expect(tv.locator("#serving")).to_contain_text(f"{first['seq_no']} 号")
    await expect(tv.locator("#serving")).to_contain_text("3诊室")
    await expect(tv.locator("#next")).to_contain_text(f"{second['seq_no']} 号")
    await expect(tv.locator("#waiting-count")).to_have_text("1")
    await expect(tv.locator("#status")).to_be_hidden()
    shown = await tv.locator("#serving").inner_text() + await tv.locator("#next").inner_text()
    assert "患*" in shown and "患者" not in shown, shown  # names are masked
    await tv.screenshot(path=str(ARTIFACTS / "display.png"))

    # done: the visit is completed, the board counts it
    await serving.get_by_role("button", name="完成").click()
    await expect(serving).to_contain_text("暂无")
    assert (await my_queue(0))["status"] == "done"
    done = await api.request("GET", f"/appointments/{first['id']}", token=c.patient_tokens[0])
    assert done.body["status"] == "completed", done.body
    await open_screen(page, "/board")
    await expect(card.locator('[data-k="done"]')).to_have_text("1")
    await expect(card.locator('[data-k="waiting"]')).to_have_text("1")
    await context.close()
    assert not watched.errors, watched.errors


async def test_desk_never_sees_admin_screens_and_b_is_invisible(api: Api, browser: Browser) -> None:
    a = await make_clinic(api, patients=1)
    b = await make_clinic(api, patients=1)
    base = api.stack.gateway_url
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    await login(page, base, a.desk_username, DESK_PASSWORD)
    nav = [await link.get_attribute("href") for link in await page.locator("nav a").all()]
    assert nav == [f"/console{p}" for p in DESK_SCREENS], nav
    for path in ADMIN_SCREENS:  # a typed URL or a bookmark
        await page.goto(f"{base}/console{path}")
        await expect(page.get_by_test_id("forbidden")).to_be_visible()
        await expect(page.locator("main")).not_to_contain_text("员工账号")

    async def call(method: str, path: str) -> int:
        status: int = await page.evaluate(
            """async ([method, path]) => {
                 const s = JSON.parse(sessionStorage.getItem('guahao.console.session'));
                 const r = await fetch('/api/v1' + path, {method,
                   headers: {Authorization: 'Bearer ' + s.access}});
                 return r.status;
               }""",
            [method, path],
        )
        return status

    # an access token about to expire is refreshed first (one rotation), the screen works
    old_refresh = await page.evaluate(
        "JSON.parse(sessionStorage.getItem('guahao.console.session')).refresh"
    )
    await page.evaluate("""() => {
        const s = JSON.parse(sessionStorage.getItem('guahao.console.session'));
        s.expiresAt = 0;
        sessionStorage.setItem('guahao.console.session', JSON.stringify(s));
    }""")
    await page.goto(f"{base}/console/board")
    await expect(page.locator(f'[data-schedule="{a.sid}"]')).to_be_visible()
    new_refresh = await page.evaluate(
        "JSON.parse(sessionStorage.getItem('guahao.console.session')).refresh"
    )
    assert new_refresh != old_refresh
    # the old refresh token is dead (reusing it would revoke the family: not tried here)

    ha, hb = a.hospital.id, b.hospital.id
    for path in (
        f"/admin/hospitals/{ha}/staff",
        f"/admin/hospitals/{ha}/webhooks",
        f"/admin/hospitals/{ha}/stats?from=2026-12-01&to=2026-12-02",
        f"/admin/hospitals/{ha}/doctors",
        f"/admin/hospitals/{ha}/calendar",
        f"/admin/hospitals/{ha}/audit",
    ):
        assert await call("GET", path) == 403, path
    assert await call("GET", f"/admin/hospitals/{ha}/appointments") == 200
    # hospital B, with the desk token of A: nothing of it exists
    assert await call("GET", f"/admin/hospitals/{hb}/appointments") == 404
    assert await call("GET", f"/admin/hospitals/{hb}/appointments/{b.appointments[0]['id']}") == 404
    # B's patient shows up at A's desk: the code is not found, nothing changes
    await open_screen(page, "/checkin")
    code = page.locator("#checkin-code input")
    await code.fill(f"guahao:checkin:{b.appointments[0]['id']}")
    await code.press("Enter")
    await expect(page.get_by_test_id("checkin-error")).to_contain_text("未找到该预约")
    b_appt = await api.request(
        "GET", f"/appointments/{b.appointments[0]['id']}", token=b.patient_tokens[0]
    )
    assert b_appt.body["status"] == "booked"
    # and A's board lists A's session only
    await open_screen(page, "/board")
    await expect(page.locator(f'[data-schedule="{a.sid}"]')).to_be_visible()
    await expect(page.locator(f'[data-schedule="{b.sid}"]')).to_have_count(0)
    await context.close()


async def test_admin_actions_through_the_console(api: Api, browser: Browser) -> None:
    """What the admin screens change, checked through the API: a webhook (its secret shown
    once) and a redelivery, 改约 and a cancellation with a reason, a staff account created,
    disabled and reset, a holiday, a doctor."""
    c = await make_clinic(api)
    await make_schedule(api, c.hospital, capacity=5, date=TOMORROW)
    base = api.stack.gateway_url
    watched = Watched()
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    watched.attach(page)
    await login(page, base, c.admin_username, c.admin_password)

    # a webhook to a closed port: its deliveries fail and can be replayed
    await open_screen(page, "/webhooks")
    hook_url = f"http://127.0.0.1:{free_port()}/hook"
    await page.locator("#wh-url input").fill(hook_url)
    await page.locator("#wh-events input").fill("appointment.*")
    await page.get_by_role("button", name="添加").click()
    await expect(page.get_by_test_id("webhook-secret")).not_to_be_empty()
    await expect(page.locator("main tr", has_text=hook_url)).to_be_visible()

    # 改约 the first to tomorrow, cancel the second with a reason
    moved_id, cancelled_id = c.appointments[0]["id"], c.appointments[1]["id"]
    await open_screen(page, "/appointments")
    rows = page.locator("main tbody tr")
    await expect(rows).to_have_count(2)

    def row_of(n: int) -> Any:
        seq = re.compile(rf"^\s*{c.appointments[n]['seq_no']}\s*$")
        return rows.filter(has=page.locator("td:first-child", has_text=seq))

    first_row = row_of(0)
    await first_row.get_by_role("button", name="改约").click()
    move = page.locator(".t-dialog", has_text="新的时段")
    await expect(move.locator("#move-slot option")).to_have_count(2)  # placeholder + one
    await move.locator("#move-slot").select_option(index=1)
    await move.get_by_role("button", name="确认改约").click()
    await expect(page.get_by_role("status")).to_contain_text("已改约")
    moved = await api.request("GET", f"/appointments/{moved_id}", token=c.patient_tokens[0])
    assert moved.body["date"] == TOMORROW.isoformat() and moved.body["status"] == "booked"

    second_row = row_of(1)
    await second_row.get_by_role("button", name="取消").click()
    cancel = page.locator(".t-dialog", has_text="取消预约")
    await cancel.locator("#cancel-reason input").fill("医生临时停诊")
    await cancel.get_by_role("button", name="确认取消").click()
    await expect(second_row).to_contain_text("已取消")
    cancelled = await api.request("GET", f"/appointments/{cancelled_id}", token=c.patient_tokens[1])
    assert (cancelled.body["status"], cancelled.body["cancelled_by"], cancelled.body["reason"]) == (
        "cancelled",
        "hospital",
        "医生临时停诊",
    ), cancelled.body

    # the webhook saw both; a failed delivery is replayed
    await open_screen(page, "/webhooks")
    hook_row = page.locator("main tr", has_text=hook_url)
    deliveries = page.locator(
        "main h2:has-text('投递记录') + div tbody tr", has_text="appointment."
    )
    for _ in range(30):
        await hook_row.get_by_role("button", name="投递记录").click()
        await page.wait_for_load_state("networkidle")
        if await deliveries.count() >= 2:
            break
        await page.wait_for_timeout(500)
    assert await deliveries.count() >= 2
    await deliveries.first.get_by_role("button", name="重新投递").click()
    await expect(page.get_by_role("status")).to_contain_text("已重新投递")

    # a desk account: created, disabled, its password reset (shown once)
    await open_screen(page, "/staff")
    username = f"desk_ui_{uuid.uuid4().hex[:6]}"
    await page.locator("#st-username input").fill(username)
    await page.locator("#st-password input").fill("desk-ui-password-1")
    await page.get_by_role("button", name="创建").click()
    account = page.locator("main tbody tr", has_text=username)
    await expect(account).to_contain_text("前台")
    await account.get_by_role("button", name="停用").click()
    await expect(account).to_contain_text("已停用")
    refused = await api.request(
        "POST", "/auth/staff/login", json={"username": username, "password": "desk-ui-password-1"}
    )
    assert refused.status in (401, 403), refused.body
    await account.get_by_role("button", name="启用").click()
    await expect(account).to_contain_text("正常")
    await account.get_by_role("button", name="重置密码").click()
    temporary = page.locator("main code.secret")
    await expect(temporary).not_to_be_empty()
    one_time = await temporary.inner_text()
    # that account signs in with the one-time password: the console asks for a new one first
    desk = await context.new_page()
    watched.attach(desk)
    await desk.goto(f"{base}/console/")
    await desk.locator('input[autocomplete="username"]').fill(username)
    await desk.locator('input[autocomplete="current-password"]').fill(one_time)
    await desk.locator('input[autocomplete="current-password"]').press("Enter")
    await expect(desk.get_by_test_id("password")).to_be_visible()
    await expect(desk).to_have_url(re.compile("/console/password$"))
    await desk.locator("#pw-old input").fill(one_time)
    await desk.locator("#pw-new input").fill("desk-ui-password-2")
    await desk.locator("#pw-again input").fill("desk-ui-password-2")
    await desk.get_by_role("button", name="保存").click()
    await expect(desk.get_by_test_id("board")).to_be_visible()
    relogin = await api.request(
        "POST", "/auth/staff/login", json={"username": username, "password": "desk-ui-password-2"}
    )
    assert relogin.status == 200 and not relogin.body["must_change_password"], relogin.body
    await desk.close()

    # a holiday
    await open_screen(page, "/calendar")
    holiday = (TOMORROW + dt.timedelta(days=40)).isoformat()
    await page.locator('main input[type="date"]').fill(holiday)
    await page.locator("main label.field input").fill("院庆")
    await page.get_by_role("button", name="保存").click()
    await expect(page.locator("main tbody tr", has_text=holiday)).to_contain_text("院庆")

    # a doctor, unpublished, then published
    await open_screen(page, "/doctors")
    await page.locator("#doc-name input").fill("李医生")
    await page.get_by_role("button", name="添加", exact=True).click()
    doctor = page.locator("main tbody tr", has_text="李医生")
    await expect(doctor).to_contain_text("未上线")
    await doctor.get_by_role("button", name="上线").click()
    await expect(doctor).to_contain_text("已上线")
    listed = await api.request("GET", "/doctors", params={"hospital_id": c.hospital.id})
    assert "李医生" in [d["name"] for d in listed.body["items"]]

    await context.close()
    assert not watched.errors, watched.errors


async def keyboard_reach(page: Page) -> list[str]:
    """Tab through the page; the interactive elements focus never reached."""
    count: int = await page.evaluate(
        """(sel) => {
             const els = [...document.querySelectorAll(sel)].filter((el) =>
               el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden');
             els.forEach((el, i) => el.setAttribute('data-kb', String(i)));
             return els.length;
           }""",
        FOCUSABLE,
    )
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    seen: set[str] = set()
    # Tab starts after the last clicked element and wraps through the browser's own UI:
    # go round once, whatever the starting point
    for _ in range(2 * count + 40):
        await page.keyboard.press("Tab")
        kb = await page.evaluate(
            "document.activeElement && document.activeElement.getAttribute('data-kb')"
        )
        if kb is not None:
            seen.add(kb)
        if len(seen) == count:
            break
    missed: list[str] = await page.evaluate(
        """(seen) => [...document.querySelectorAll('[data-kb]')]
             .filter((el) => !seen.includes(el.getAttribute('data-kb')))
             .map((el) => el.outerHTML.slice(0, 160))""",
        sorted(seen),
    )
    return missed


async def test_every_screen_is_clean_keyboard_reachable_and_weighed(
    api: Api, browser: Browser
) -> None:
    c = await make_clinic(api, patients=1)
    base = api.stack.gateway_url
    watched = Watched()
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    watched.attach(page)
    transferred: list[tuple[str, int]] = []

    async def weigh(response: Any) -> None:
        sizes = await response.request.sizes()
        transferred.append((response.url, sizes["responseBodySize"] + sizes["responseHeadersSize"]))

    page.on("response", weigh)
    await page.goto(f"{base}/console/")
    await page.wait_for_load_state("networkidle")
    page.remove_listener("response", weigh)
    weight = sum(size for _, size in transferred)
    assert weight > 0
    missed = await keyboard_reach(page)
    assert not missed, ("login", missed)

    await login(page, base, c.admin_username, c.admin_password)
    await expect(page.get_by_test_id("role")).to_have_text("医院管理员")
    # an admin's board also lists today's sessions nobody booked, with their capacity
    empty = await make_schedule(
        api, c.hospital, capacity=4, session="am", date=dt.datetime.now(HOSPITAL_TZ).date()
    )
    await page.get_by_role("button", name="刷新").click()
    empty_card = page.locator(f'[data-schedule="{empty["id"]}"]')
    await expect(empty_card).to_contain_text("号源 4")
    await expect(empty_card.locator('[data-k="booked"]')).to_have_text("0")
    await expect(empty_card.locator('[data-k="waiting"]')).to_have_text("0")
    booked_card = page.locator(f'[data-schedule="{c.sid}"]')
    await expect(booked_card.locator('[data-k="booked"]')).to_have_text("1")
    await expect(booked_card).to_contain_text("号源 10")
    for path in DESK_SCREENS + ADMIN_SCREENS + ("/password",):
        if path == "/password":
            await page.locator('a[href="/console/password"]').click()
        else:
            await open_screen(page, path)
        await page.wait_for_load_state("networkidle")
        await expect(page.locator("main section")).to_be_visible()
        missed = await keyboard_reach(page)
        assert not missed, (path, missed)
    await page.screenshot(path=str(ARTIFACTS / "console-staff.png"), full_page=True)

    # a dialog (TDesign's scroll lock would inject a <style>: turned off, see README)
    await open_screen(page, "/appointments")
    await page.get_by_role("button", name="取消").first.click()
    dialog = page.locator(".t-dialog", has_text="取消预约")
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert not watched.errors, watched.errors

    # the CSP is enforced and the watch above would see a breach: an inline style is refused
    async with page.expect_console_message(lambda m: m.type == "error") as refused:
        await page.evaluate("""() => {
            const style = document.createElement('style');
            style.textContent = 'body { background: red; }';
            document.head.appendChild(style);
        }""")
    assert "Content Security Policy" in (await refused.value).text
    assert watched.errors and "Content Security Policy" in watched.errors[0][1]
    assert (
        await page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
    )
    await context.close()

    report = {
        "first_load_bytes": weight,
        "requests": len(transferred),
        "files": [{"url": url.replace(base, ""), "bytes": size} for url, size in transferred],
    }
    (ARTIFACTS / "console-weight.json").write_text(json.dumps(report, indent=2))
    print(f"\nconsole first load: {weight} bytes transferred in {len(transferred)} requests")


async def test_display_keeps_its_data_through_a_network_drop(api: Api, browser: Browser) -> None:
    base = api.stack.gateway_url
    state = {"up": True, "seq": 7, "polls": 0}

    async def answer(route: Any) -> None:
        state["polls"] += 1
        if not state["up"]:
            await route.abort("internetdisconnected")
            return
        await route.fulfill(
            json={
                "now_serving": [{"seq_no": state["seq"], "name": "张*", "room": "1诊室"}],
                "next": [
                    {"seq_no": state["seq"] + 1, "name": "李*"},
                    {"seq_no": state["seq"] + 2, "name": "王*"},
                ],
                "waiting_count": 2,
            }
        )

    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.route("**/api/v1/display/**", answer)
    await page.goto(f"{base}/display/h_x/s_y?refresh=1")
    serving = page.locator("#serving")
    await expect(serving).to_contain_text("7 号")
    await expect(serving).to_contain_text("张*")
    await expect(page.locator("#next")).to_contain_text("李*")
    await expect(page.locator("#waiting-count")).to_have_text("2")
    await expect(page.locator("#status")).to_be_hidden()

    state["up"] = False
    polls = state["polls"]
    await expect(page.locator("#status")).to_be_visible(timeout=20_000)
    await expect(serving).to_contain_text("7 号")  # the last data stays on screen
    # backing off: a few more tries, not a storm
    await page.wait_for_timeout(4_000)
    assert state["polls"] - polls < 8, state
    await page.screenshot(path=str(ARTIFACTS / "display-reconnecting.png"))

    state["up"], state["seq"] = True, 8
    await expect(serving).to_contain_text("8 号", timeout=40_000)
    await expect(page.locator("#status")).to_be_hidden()

    # a mistyped address on the TV: the real API answers 404, the page says so
    unknown = await context.new_page()
    await unknown.goto(f"{base}/display/h_nope/s_nope")
    await expect(unknown.locator("#serving-empty")).to_have_text("未找到该出诊，请检查地址")
    await expect(unknown.locator("#status")).to_be_visible()
    await context.close()
    assert not errors, errors
