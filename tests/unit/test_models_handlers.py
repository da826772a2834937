"""The Models tab's handlers, called directly over real Services on a temp data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.auth import CLI, PermissionDenied
from backend.services import Services
from tests.support.fakes import FakeNvml
from tests.support.ui_services import StubRequest, services_on
from ui.models.handlers import ModelsHandlers
from ui.models.render import ANY_FAMILY, ANY_SIZE

ADMIN, STAFF = StubRequest("root", "admin-page"), StubRequest("sam", "staff-page")
GIB = 1024**3


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = services_on(tmp_path, FakeNvml([], init_error="no driver here"))
    built.users.add_user(CLI, "root", "root-pass-123", "admin")
    built.users.add_user(CLI, "sam", "sam-pass-1234", "staff")
    yield built
    built.close()


@pytest.fixture
def handlers(services: Services) -> ModelsHandlers:
    return ModelsHandlers(services)


def _refusals(services: Services, action: str) -> list[str]:
    return [e.actor for e in services.store.list_audit(action=action, outcome="refused")]


def test_staff_see_the_catalog_and_lists_but_not_the_admin_controls(
    handlers: ModelsHandlers,
) -> None:
    page = handlers.catalog(STAFF, 4096, "f16", ANY_FAMILY, ANY_SIZE, False)
    assert page.samples and len(page.samples) == len(page.tags)
    assert "<" in page.machine_html
    is_admin, lists = handlers.tab_load(STAFF)
    assert is_admin is False and lists.note == ""
    assert "smollm2:135m" in lists.installed_names  # the embedded engine ships it
    assert "smollm2:135m" in lists.installed_html
    assert handlers.tab_load(ADMIN)[0] is True


@pytest.mark.parametrize(
    ("call", "action"),
    [
        (lambda h: h.load(STAFF, "smollm2:135m", 4096, False), "model.load"),
        (lambda h: h.load(STAFF, "smollm2:135m", 4096, True), "model.load"),
        (lambda h: list(h.pull(STAFF, "llama3.2:1b")), "model.pull"),
        (lambda h: h.delete(STAFF, "smollm2:135m"), "model.delete"),
        (lambda h: h.unload(STAFF, "smollm2:135m"), "model.unload"),
    ],
)
def test_staff_are_refused_every_change_and_each_refusal_is_audited(
    services: Services, handlers: ModelsHandlers, call, action: str
) -> None:
    with pytest.raises(PermissionDenied, match="sam is staff"):
        call(handlers)
    assert _refusals(services, action) == ["sam"]


def test_an_anonymous_caller_is_asked_to_sign_in(handlers: ModelsHandlers) -> None:
    with pytest.raises(PermissionDenied, match="Sign in first"):
        handlers.catalog(StubRequest(None), 4096, "f16", None, None, False)
    with pytest.raises(PermissionDenied, match="Sign in first"):
        handlers.lists(None)


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda h: h.catalog(STAFF, "lots", "f16", None, None, False), ["Context length", "lots"]),
        (lambda h: h.catalog(STAFF, float("inf"), "f16", None, None, False), ["Context length"]),
        (lambda h: h.catalog(STAFF, 10**30, "f16", None, None, False), ["Context length"]),
        (lambda h: h.catalog(STAFF, 4096, "f16", ["x"], None, False), ["Family", "a list"]),
        (lambda h: h.catalog(STAFF, 4096, "f16", None, "huge\x00", False), ["Size", "huge"]),
        (lambda h: h.select(STAFF, 5, [], 4096, "f16"), ["Pick a row of the catalog"]),
        (lambda h: h.select(STAFF, "0", ["a"], 4096, "f16"), ["Pick a row of the catalog"]),
        (lambda h: h.check(STAFF, "smollm2:135m", {"a": 1}), ["Context length"]),
        (lambda h: h.delete_ask(ADMIN, None), ["Pick an installed model first"]),
        (lambda h: h.load(ADMIN, "smollm2:135m", -1, False), ["Context length", "-1"]),
    ],
)
def test_hostile_values_give_a_sentence_naming_them(
    handlers: ModelsHandlers, call, names: list[str]
) -> None:
    with pytest.raises(ValueError) as raised:
        call(handlers)
    message = str(raised.value)
    assert message.endswith(".") and "Traceback" not in message
    for name in names:
        assert name in message


def test_the_catalog_filters_by_family_size_and_fit(
    services: Services, handlers: ModelsHandlers
) -> None:
    every = handlers.catalog(STAFF, 4096, "f16", ANY_FAMILY, ANY_SIZE, False)
    family = services.catalog.families()[0]
    one = handlers.catalog(STAFF, 4096, "f16", family, ANY_SIZE, False)
    expected = {q.tag for e in services.catalog.entries if e.family == family for q in e.quants}
    assert one.tags and set(one.tags) <= expected < set(every.tags) | expected
    assert len(one.tags) < len(every.tags)
    small = handlers.catalog(STAFF, 4096, "f16", ANY_FAMILY, "< 3B", False)
    params = {q.tag: e.parameter_count for e in services.catalog.entries for q in e.quants}
    assert small.tags and all(params[t] < 3e9 for t in small.tags)
    assert len(small.tags) < len(every.tags)
    fits = handlers.catalog(STAFF, 131072, "f16", ANY_FAMILY, ANY_SIZE, True)
    assert set(fits.tags) < set(handlers.catalog(STAFF, 131072, "f16", None, "", False).tags)


def test_cancel_without_a_pull_in_flight_does_nothing(handlers: ModelsHandlers) -> None:
    assert handlers.cancel_pull(ADMIN) is False
    assert handlers.cancel_pull(STAFF) is False


def test_a_cancel_stops_only_its_own_sessions_pull(handlers: ModelsHandlers) -> None:
    with handlers.pulls.running(ADMIN.session_hash) as flag:
        assert handlers.cancel_pull(STAFF) is False and not flag.is_set()
        assert handlers.cancel_pull(ADMIN) is True and flag.is_set()
    assert handlers.cancel_pull(ADMIN) is False
