"""axe-core on every main screen: no serious or critical WCAG 2.1 AA violation.

axe-core comes from npm, pinned in package-lock.json (``python3 -m webmail.dev
test`` runs ``npm ci``). Each screen of the tour (tests.browser.conftest.SCREENS)
is checked on a desktop and a phone, light and dark: colour contrast differs
between the two schemes and the layout between the two sizes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import SCREENS, VARIANTS, visit

pytestmark = pytest.mark.django_db(transaction=True)

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING_IMPACTS = {"serious", "critical"}

# iframes: false -- the sandboxed frame of a message shows the sender's HTML,
# not our markup, so axe does not look inside it. The <iframe> element itself
# (its title, its size) is ours and still checked.
RUN_AXE = """async tags => {
    const result = await axe.run(document, {runOnly: tags, iframes: false});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => n.target.join(" ") + "  " + n.failureSummary),
    }));
}"""


def describe(variant: str, violation: dict) -> str:
    nodes = "\n".join(f"      {node}" for node in violation["nodes"])
    return (
        f"{variant}: [{violation['impact']}] {violation['id']}: "
        f"{violation['help']}\n{nodes}"
    )


@pytest.fixture(scope="module")
def axe_script() -> Path:
    if not AXE.exists():
        pytest.fail(
            f"{AXE} is missing: run `npm ci` at the top of the repository "
            "(python3 -m webmail.dev test does it)."
        )
    return AXE


@pytest.mark.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])
def test_no_serious_violation(browser, live_server, tour, axe_script, screen):
    """axe finds nothing serious or critical in any variant of the screen."""
    found: list[str] = []
    for variant in VARIANTS:
        # The pages' Content-Security-Policy refuses injected scripts: axe is
        # let in by turning the policy off in this test's browser only.
        with visit(
            browser, live_server, tour, screen, variant, bypass_csp=True
        ) as seen:
            seen.page.add_script_tag(path=str(axe_script))
            violations = seen.page.evaluate(RUN_AXE, TAGS)
            found += [
                describe(variant, v)
                for v in violations
                if v["impact"] in FAILING_IMPACTS
            ]
    assert found == [], "\n".join(found)


def test_the_check_sees_a_violation(browser, live_server, tour, axe_script):
    """The harness is not blind: an unlabeled field and grey-on-grey text put on
    a real page are reported, with their impact and their element."""
    sign_in = next(s for s in SCREENS if s.name == "sign-in")
    with visit(
        browser, live_server, tour, sign_in, "desktop-dark", bypass_csp=True
    ) as seen:
        seen.page.evaluate(
            """() => document.querySelector("main").insertAdjacentHTML(
                "beforeend",
                '<input id="planted-field" type="text">'
                + '<p id="planted-text" style="color:#777;background:#888">dim</p>'
            )"""
        )
        seen.page.add_script_tag(path=str(axe_script))
        violations = {v["id"]: v for v in seen.page.evaluate(RUN_AXE, TAGS)}
    assert violations["label"]["impact"] == "critical"
    assert violations["label"]["nodes"][0].startswith("#planted-field")
    assert violations["color-contrast"]["impact"] == "serious"
    assert violations["color-contrast"]["nodes"][0].startswith("#planted-text")


@pytest.mark.parametrize("name", ["message-list", "compose", "sign-in"])
def test_keyboard_users_can_skip_to_the_content(browser, live_server, tour, name):
    """The first Tab shows the skip link; following it, the next Tab lands in
    the page's content, past the site's navigation."""
    screen = next(s for s in SCREENS if s.name == name)
    with visit(browser, live_server, tour, screen, "desktop-light") as seen:
        page = seen.page
        page.keyboard.press("Tab")
        skip = page.locator(".skip-link")
        assert page.evaluate("() => document.activeElement.className") == "skip-link"
        box = skip.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["y"] >= 0
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        assert page.evaluate("() => Boolean(document.activeElement.closest('main'))")
        assert seen.problems == []


def test_folder_controls_say_which_folder(browser, live_server, tour):
    """On the folder page each button and field names its folder, and the
    confirmation of a change is announced (a status region)."""
    screen = next(s for s in SCREENS if s.name == "folders")
    with visit(browser, live_server, tour, screen, "phone-light") as seen:
        page = seen.page
        assert page.get_by_role("button", name="Delete Travel", exact=True).count() == 1
        assert page.get_by_role("button", name="Rename Travel", exact=True).count() == 1
        page.get_by_role("textbox", name="New name (Travel)").fill("Trips")
        with page.expect_navigation():
            page.get_by_role("button", name="Rename Travel").click()
        assert "Folder renamed." in page.get_by_role("status").inner_text()
        assert page.get_by_role("button", name="Delete Trips", exact=True).count() == 1
        assert seen.problems == []


def test_field_errors_are_read_with_their_field(browser, live_server, tour):
    """A refused sign-up: the password field is marked invalid and its error is
    part of its accessible description, next to the rules it broke."""
    from playwright.sync_api import expect

    screen = next(s for s in SCREENS if s.name == "sign-up")
    with visit(browser, live_server, tour, screen, "phone-dark") as seen:
        page = seen.page
        page.get_by_label("Email").fill("carol@example.org")
        page.get_by_label("Password", exact=True).fill("123")
        page.get_by_label("Password (again)").fill("123")
        with page.expect_navigation():
            page.get_by_role("button", name="Sign Up").click()
        password = page.get_by_label("Password", exact=True)
        expect(password).to_have_attribute("aria-invalid", "true")
        expect(password).to_have_accessible_description(
            re.compile("at least 8 characters.*too short", re.DOTALL)
        )


def test_account_actions_say_which_account(browser, live_server, tour):
    """On the accounts page each link and button names its account."""
    screen = next(s for s in SCREENS if s.name == "accounts")
    with visit(browser, live_server, tour, screen, "desktop-light") as seen:
        page = seen.page
        for name in ("Read Personal", "Edit Personal", "Remove Old ISP"):
            assert page.get_by_role("link", name=name, exact=True).count() == 1, name
        assert page.get_by_role("button", name="Import now Old ISP").count() == 1
        with page.expect_navigation():
            page.get_by_role("link", name="Edit Old ISP", exact=True).click()
        assert page.get_by_role("heading", name="Edit “Old ISP”").is_visible()
        assert seen.problems == []
