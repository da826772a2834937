"""The Models tab's handlers, called directly over real Services on a temp data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.auth import CLI, PermissionDenied
from backend.engines.ollama import OllamaEngine
from backend.estimate.catalog import load_catalog
from backend.services import CATALOG_PATH, Services
from tests.support.fakes import FakeNvml
from tests.support.ollama_server import OllamaTestServer
from tests.support.ui_services import StubRequest, services_on
from ui.models.handlers import ModelsHandlers, installed_as, preselect
from ui.models.render import ANY_FAMILY, ANY_SIZE
from ui.models.wiring import list_outputs

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


# -- the Load picker ------------------------------------------------------------------------

HOSTILE_PICKS = [None, "", "   ", 10**30, float("inf"), ["smollm2:135m"], {"a": 1}, "\ud800",
                 "gone:1b", "x" * 100_000, "smollm2:135m\x00"]  # fmt: skip


def test_the_load_picker_shows_the_installed_model_on_first_view(handlers: ModelsHandlers) -> None:
    is_admin, lists = handlers.tab_load(ADMIN)
    assert is_admin and lists.installed_names == ["smollm2:135m"]
    assert lists.picked == "smollm2:135m"
    picker = list_outputs(lists)[1]
    assert picker.choices == [("smollm2:135m", "smollm2:135m")]
    assert picker.value == "smollm2:135m"


def test_a_refresh_keeps_an_installed_pick_in_the_engines_spelling(
    handlers: ModelsHandlers,
) -> None:
    assert handlers.lists(ADMIN, " SmolLM2:135M ").picked == "smollm2:135m"
    assert handlers.lists(ADMIN, "gone:1b", "smollm2:135m").picked == "smollm2:135m"


@pytest.mark.parametrize("value", HOSTILE_PICKS)
def test_a_pick_that_is_not_installed_falls_back_to_the_first_installed(
    services: Services, handlers: ModelsHandlers, value: object
) -> None:
    audit_before = services.store.list_audit()
    lists = handlers.lists(ADMIN, value)
    assert lists.picked == "smollm2:135m" and lists.note == ""
    assert services.store.list_audit() == audit_before, "a refresh changes nothing"


def test_preselect_prefers_the_first_wanted_that_is_installed() -> None:
    names = ["llama3.2:latest", "qwen2.5:0.5b"]
    assert preselect(names, ["LLAMA3.2"]) == "llama3.2:latest"  # Ollama's ":latest"
    assert preselect(names, ["nope", "qwen2.5:0.5b", "llama3.2"]) == "qwen2.5:0.5b"
    assert preselect(names, [None, 5]) == "llama3.2:latest"
    assert preselect([], ["llama3.2"]) is None
    assert installed_as("qwen2.5", names) is None  # another tag is another model


def test_without_models_the_picker_shows_nothing(tmp_path: Path, refused_ollama_host: str) -> None:
    services = services_on(tmp_path, FakeNvml([]), OllamaEngine(refused_ollama_host, timeout_s=5))
    services.users.add_user(CLI, "root", "root-pass-123", "admin")
    try:
        lists = ModelsHandlers(services).lists(ADMIN, "smollm2:135m")
        assert lists.installed_names == [] and lists.picked is None
        assert lists.note.startswith("⚠")  # the engine that could not be asked is named
    finally:
        services.close()


def test_a_catalog_row_that_is_installed_picks_itself_for_load(
    tmp_path: Path, ollama_test_server: OllamaTestServer
) -> None:
    row = load_catalog(CATALOG_PATH).entries[0].quants[0].tag
    ollama_test_server.reset()
    ollama_test_server.add_model(row)
    services = services_on(tmp_path, FakeNvml([]), OllamaEngine(ollama_test_server.url))
    services.users.add_user(CLI, "root", "root-pass-123", "admin")
    try:
        handlers = ModelsHandlers(services)
        names = ollama_test_server.installed_names()
        (served,) = [n for n in names if n.lower() == row.lower()]  # Ollama's spelling
        assert len(names) == 2 and handlers.lists(ADMIN).picked in names
        assert handlers.lists(ADMIN, row.upper()).picked == served
        page = handlers.catalog(ADMIN, 4096, "f16", ANY_FAMILY, ANY_SIZE, False)
        html, tag, installed = handlers.select(ADMIN, page.tags.index(row), page.tags, 4096, "f16")
        assert (tag, installed) == (row, served) and "mm-decision" in html
        other = next(t for t in page.tags if t.lower() not in names)
        assert handlers.select(ADMIN, page.tags.index(other), page.tags, 4096, "f16")[1:] == (
            other,
            None,
        )
    finally:
        services.close()
        ollama_test_server.reset()
