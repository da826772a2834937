"""The Admin tab's handlers, called directly over real Services on a temp data dir."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.auth import CLI, AccountError, AuditFilter, PermissionDenied
from backend.services import Services
from backend.settings import Settings
from tests.support.ui_services import StubRequest
from ui.admin.handlers import AdminHandlers, AuditQuery, audit_query
from ui.admin.limits_panel import FIRST_TARGET, fields_for, table_note

ADMIN, STAFF = StubRequest("root"), StubRequest("sam")
EVERYTHING = AuditQuery()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = Services.build(Settings(data_dir=tmp_path, engine="embedded"))
    built.users.add_user(CLI, "root", "root-pass-123", "admin")
    built.users.add_user(CLI, "sam", "sam-pass-1234", "staff")
    yield built
    built.close()


@pytest.fixture
def handlers(services: Services) -> AdminHandlers:
    return AdminHandlers(services)


def _refusals(services: Services, action: str) -> list[tuple[str, str]]:
    rows = services.store.list_audit(action=action, outcome="refused")
    return [(e.actor, e.target) for e in rows]


@pytest.mark.parametrize(
    ("call", "action", "target"),
    [
        (lambda h, r: h.add_user(r, "eve", "eve-pass-123", "admin", EVERYTHING), "user.add", "eve"),
        (lambda h, r: h.set_role(r, "sam", "admin", EVERYTHING), "user.role", "sam"),
        (lambda h, r: h.set_disabled(r, "root", True, EVERYTHING), "user.disable", "root"),
        (lambda h, r: h.set_disabled(r, "sam", False, EVERYTHING), "user.enable", "sam"),
        (lambda h, r: h.set_password(r, "root", "new-pass-123", EVERYTHING), "user.passwd",
         "root"),
        (lambda h, r: h.audit_page(r, EVERYTHING), "audit.read", ""),
        (lambda h, r: h.user_role(r, "sam"), "user.list", "sam"),
        (lambda h, r: h.export_audit(r, AuditFilter()), "audit.export", ""),
    ],
)  # fmt: skip
def test_staff_are_refused_every_admin_action_and_each_refusal_is_audited(
    services: Services, handlers: AdminHandlers, call, action: str, target: str
) -> None:
    users_before = services.store.list_users()
    with pytest.raises(PermissionDenied, match=r"Only an admin may .*; sam is staff"):
        call(handlers, STAFF)
    assert _refusals(services, action) == [("sam", target)]
    assert services.store.list_users() == users_before


def test_an_anonymous_caller_is_told_to_sign_in(handlers: AdminHandlers) -> None:
    with pytest.raises(PermissionDenied, match="Sign in first"):
        handlers.audit_page(StubRequest(None), EVERYTHING)
    assert handlers.load(StubRequest(None)) is None


def test_the_tab_loads_for_admins_only(handlers: AdminHandlers) -> None:
    assert handlers.load(STAFF) is None
    assert handlers.load(StubRequest("nobody")) is None
    shown = handlers.load(StubRequest("ROOT"))  # any case of the name
    assert shown is not None
    assert shown.user_names == ["root", "sam"]
    assert [row[:3] for row in shown.user_rows] == [
        ["root", "admin", "active"],
        ["sam", "staff", "active"],
    ]
    assert shown.page == 1 and shown.page_label.startswith("Page 1 · entries 1–")


def test_an_admin_adds_a_user_who_can_sign_in(services: Services, handlers: AdminHandlers) -> None:
    done = handlers.add_user(ADMIN, "  carol ", "carol-pass-1", "staff", EVERYTHING)
    assert done.notice == "Added staff 'carol'."
    assert "carol" in done.view.user_names
    assert not any("carol-pass-1" in str(cell) for row in done.view.user_rows for cell in row)
    assert done.view.audit_rows[0][1:4] == ["root", "user.add", "carol"]
    assert services.auth.check_login("carol", "carol-pass-1")


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [
        (None, "carol-pass-1", "staff", "'' is not a valid user name"),
        (["carol"], "carol-pass-1", "staff", "is not a valid user name"),
        ("carol", None, "staff", "Passwords need at least 8 characters"),
        ("carol", "carol-pass-1", ["admin"], "Role must be one of admin, staff"),
        ("carol", "carol-pass-1", {"role": "admin"}, "Role must be one of admin, staff"),
        ("sam", "carol-pass-1", "staff", "A user named 'sam' already exists"),
    ],
)
def test_form_values_of_any_type_get_a_sentence(
    services: Services, handlers: AdminHandlers, name, password, role, message: str
) -> None:
    before = services.store.list_users()
    with pytest.raises(AccountError, match=message):
        handlers.add_user(ADMIN, name, password, role, EVERYTHING)
    assert services.store.list_users() == before


def test_changing_a_user_needs_one_picked(handlers: AdminHandlers) -> None:
    with pytest.raises(ValueError, match="Pick a user first"):
        handlers.set_role(ADMIN, None, "admin", EVERYTHING)


def test_disable_and_enable_keep_the_audit_filters_shown(
    services: Services, handlers: AdminHandlers
) -> None:
    only_adds = audit_query("", "user.add", "", "")
    done = handlers.set_disabled(ADMIN, "sam", True, only_adds)
    assert done.notice == "'sam' is disabled."
    assert ["sam", "staff", "disabled"] in [row[:3] for row in done.view.user_rows]
    assert {row[2] for row in done.view.audit_rows} == {"user.add"}
    assert not services.auth.check_login("sam", "sam-pass-1234")
    done = handlers.set_disabled(ADMIN, "sam", False, only_adds)
    assert done.notice == "'sam' is enabled."
    assert {row[2] for row in done.view.audit_rows} == {"user.add"}
    assert services.auth.check_login("sam", "sam-pass-1234")


def test_role_and_password_changes_say_what_changed(
    services: Services, handlers: AdminHandlers
) -> None:
    assert handlers.set_role(ADMIN, "sam", "admin", EVERYTHING).notice == "'sam' is now admin."
    assert services.auth.resolve("sam").is_admin
    done = handlers.set_password(ADMIN, "sam", "brand-new-pass", EVERYTHING)
    assert done.notice == "Password set for 'sam'."
    assert services.auth.check_login("sam", "brand-new-pass")


def test_the_audit_log_pages_newest_first(services: Services, handlers: AdminHandlers) -> None:
    for n in range(120):
        services.store.audit(actor="bulk", action="test.row", detail=str(n))
    first = audit_query("bulk", "", "", "")
    page = handlers.audit_page(ADMIN, first)
    assert (page.page, page.page_label) == (1, "Page 1 · entries 1–50 · more ›")
    assert page.audit_rows[0][5] == "119"  # newest first
    page = handlers.audit_page(ADMIN, first.moved(+2))
    assert (page.page, page.page_label) == (3, "Page 3 · entries 101–120")
    assert page.audit_rows[-1][5] == "0"
    assert handlers.audit_page(ADMIN, first.moved(-5)).page == 1


def test_a_page_past_the_end_shows_the_last_one_or_the_first(
    services: Services, handlers: AdminHandlers
) -> None:
    for n in range(60):
        services.store.audit(actor="bulk", action="test.row", detail=str(n))
    assert handlers.audit_page(ADMIN, audit_query("bulk", "", "", "", 3)).page == 2
    assert handlers.audit_page(ADMIN, audit_query("bulk", "", "", "", 40)).page == 1


@pytest.mark.parametrize(
    ("page", "expected"),
    [(None, 1), ("abc", 1), ([2], 1), (float("nan"), 1), (float("inf"), 1_000_000),
     (10**30, 1_000_000), (-4, 1), ("3", 3), (2.0, 2), (True, 1)],
)  # fmt: skip
def test_the_audit_query_takes_values_of_any_type(page, expected: int) -> None:
    query = audit_query(None, 5, ["x"], "2024-01-01", page)
    assert query.page == expected
    assert query.filters == AuditFilter(actor="", action="5", outcome="['x']", since="2024-01-01")


def test_a_bad_filter_is_named(handlers: AdminHandlers) -> None:
    with pytest.raises(ValueError, match=r"Outcome must be one of .*, not 'maybe'"):
        handlers.audit_page(ADMIN, audit_query("", "", "maybe", ""))


def test_export_writes_the_filtered_log_and_is_audited(
    services: Services, handlers: AdminHandlers
) -> None:
    handlers.add_user(ADMIN, "carol", "carol-pass-1", "staff", EVERYTHING)
    path = handlers.export_audit(ADMIN, AuditFilter(action="user.add"))
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0] == ["when", "who", "action", "target", "outcome", "detail"]
    assert [(r[1], r[3]) for r in rows[1:]] == [("root", "carol"), ("cli", "sam"), ("cli", "root")]
    [entry] = services.store.list_audit(action="audit.export")
    assert (entry.actor, entry.detail) == ("root", "3 entries; action=user.add")


# -- the pickers: "Change a user" and the limits' "For" ---------------------------------------


def test_picking_a_user_shows_their_role_and_nobody_picked_leaves_it(
    handlers: AdminHandlers,
) -> None:
    assert handlers.user_role(ADMIN, "sam") == "staff"
    assert handlers.user_role(ADMIN, " ROOT ") == "admin"
    assert handlers.user_role(ADMIN, None) is None
    assert handlers.user_role(ADMIN, "") is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [("nobody", "There is no user 'nobody'"), ("\ud800", "There is no user '\\ud800'"),
     ("x" * 100_000, "There is no user '" + "x" * 60 + "'"),
     ("sam\x00", "There is no user 'sam\\x00'"), (10**30, "of type int"),
     (["sam"], "of type list"), ({"name": "sam"}, "of type dict"),
     (float("inf"), "of type float")],
)  # fmt: skip
def test_a_picked_value_that_is_no_user_is_named_and_changes_nothing(
    services: Services, handlers: AdminHandlers, value: object, shown: str
) -> None:
    users_before, audit_before = services.store.list_users(), services.store.list_audit()
    with pytest.raises(ValueError) as raised:
        handlers.user_role(ADMIN, value)
    assert shown in str(raised.value) and "from the list" in str(raised.value)
    assert services.store.list_users() == users_before
    assert services.store.list_audit() == audit_before


def test_limits_for_starts_on_the_staff_role_with_what_is_set_for_it(services: Services) -> None:
    root = services.auth.resolve("root")
    assert FIRST_TARGET == "role:staff"
    assert fields_for(services.limits.table(root), FIRST_TARGET) == ("", "", "")
    services.limits.set_for(root, "role:staff", {"reply_tokens_per_day": "20,000"})
    services.limits.set_for(root, "user:sam", {"turns_in_flight": "2"})
    records = services.limits.table(root)
    assert fields_for(records, FIRST_TARGET) == ("", "", "20000")
    assert fields_for(records, "user:SAM") == ("2", "", "")
    assert fields_for(records, "role:admin") == ("", "", "")
    for hostile in (None, "", 5, ["role:staff"]):
        with pytest.raises(AccountError, match="Pick a role or a user"):
            fields_for(records, hostile)


def test_the_limits_table_says_when_nobody_is_limited(services: Services) -> None:
    root = services.auth.resolve("root")
    assert table_note(services.limits.table(root)) == "No limits are set: nobody's chat is limited."
    services.limits.set_for(root, "role:staff", {"turns_in_flight": "3"})
    assert table_note(services.limits.table(root)) == ""
    services.limits.set_for(root, "role:staff", {})  # every field empty: the role's limits go
    assert table_note(services.limits.table(root)).startswith("No limits are set")
