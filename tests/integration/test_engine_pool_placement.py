"""An admin's load on a pool of three loopback Ollama-protocol servers (real HTTP, real
OllamaEngine clients, a real SQLite store), each declared with its own VRAM: placement by
spread and pack, two loads in flight reserving per host, a refusal with every host's numbers,
and the catalog's fit badges per host (a vLLM double's GPU taken).

The declared sizes are multiples of what the bundled model needs here (measured first), so the
tests hold whatever the estimate says of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from backend.admission import AdmissionSettings, Reservations
from backend.auth import CLI, User, UserAdmin
from backend.engines.base import ChatMessage, ChatOptions
from backend.engines.config import EngineSpec, GpuFacts
from backend.engines.ollama import OllamaEngine
from backend.engines.pool import EnginePool
from backend.engines.pool_member import PoolMember, member_from_spec
from backend.estimate.catalog import load_catalog
from backend.hardware.monitor import HardwareMonitor
from backend.models_admin import AdmissionRefused, ModelService
from backend.models_admin.inputs import ModelInputError
from backend.models_admin.values import LoadResult
from backend.store.database import Store
from tests.support.fakes import FakeNvml
from tests.support.fixtures_openai import DOUBLE_API_KEY
from tests.support.ollama_pool import KillableOllamaServer, scripted_ollama_servers
from tests.support.ollama_server import BUNDLED_NAME
from tests.support.openai_double import OpenAIDouble
from tests.support.ui_services import StubRequest, services_on
from ui.models.handlers import ModelsHandlers
from ui.models.render import ANY_FAMILY, ANY_SIZE, ROOMIEST

GIB = 1024**3
CTX = 2048
NAMES = ("a", "b", "c")
CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "data" / "catalog.json")


@pytest.fixture
def servers() -> Iterator[list[KillableOllamaServer]]:
    with scripted_ollama_servers(3, "ok", tokens_per_s=0) as started:
        yield started


@pytest.fixture
def admin(users: UserAdmin) -> User:
    return users.add_user(CLI, "root", "root-pass-123", "admin")


def declared(name: str, url: str, gib: float) -> PoolMember:
    spec = EngineSpec(name, "ollama", url, gpu_facts=GpuFacts("declared", declared_vram_gib=gib))
    return member_from_spec(spec, timeout_s=30)


def service_over(
    pool: EnginePool, store: Store, tmp_path: Path, reservations: Reservations | None = None
) -> ModelService:
    """The pool behind a ModelService as the app builds it (this box has no GPU: a fake NVML)."""
    hardware = HardwareMonitor(tmp_path, tmp_path / "models", nvml=FakeNvml([]))
    return ModelService(store, lambda: pool, hardware, CATALOG, reservations)


@pytest.fixture
def need_gib(servers, store: Store, tmp_path: Path, admin: User) -> float:
    """What the bundled model takes on a GPU at CTX here (no margin), in GiB."""
    pool = EnginePool([declared("probe", servers[0].url, 1000)], interval_s=60)
    pool.start()
    try:
        service = service_over(pool, store, tmp_path)
        service.set_admission_settings(admin, AdmissionSettings(margin=0))
        decision = service.check(admin, BUNDLED_NAME, CTX, host="probe")
        assert decision.verdict == "admit" and decision.placement.verdict == "full GPU offload"
        return decision.placement.vram_bytes / GIB
    finally:
        pool.close()


def started_pool(servers, sizes_gib: Sequence[float]) -> EnginePool:
    members = [declared(n, s.url, g) for n, s, g in zip(NAMES, servers, sizes_gib, strict=True)]
    pool = EnginePool(members, interval_s=0.5)
    pool.start()
    return pool


def loaded_names(server: KillableOllamaServer) -> list[str]:
    return [entry.name for entry in server.state.running()]


def placed_service(servers, store, tmp_path, admin, sizes, placement="spread", reservations=None):
    pool = started_pool(servers, sizes)
    service = service_over(pool, store, tmp_path, reservations)
    service.set_admission_settings(admin, AdmissionSettings(margin=0, placement=placement))
    return pool, service


@pytest.mark.parametrize(("placement", "host"), [("spread", "c"), ("pack", "b")])
def test_an_admin_load_goes_to_the_host_the_placement_policy_picks(
    servers, store, tmp_path, admin, need_gib, placement, host
):
    # a cannot hold it; b holds it with little room left; c with the most
    sizes = (0.5 * need_gib, 1.5 * need_gib, 3 * need_gib)
    pool, service = placed_service(servers, store, tmp_path, admin, sizes, placement)
    try:
        result = service.load(admin, BUNDLED_NAME, CTX)
        assert result.decision.host == host and result.decision.verdict == "admit"
        assert f"chosen by placement {placement}" in result.decision.reasons[0]
        assert "[a: refuse" in result.decision.reasons[0]
        where = dict(zip(NAMES, servers, strict=True))
        assert [loaded_names(s) for s in servers] == [
            [BUNDLED_NAME] if name == host else [] for name in NAMES
        ]
        assert result.record.host == where[host].url
        assert result.record.vram_delta_bytes is None  # another host: no NVML delta of this box
        [entry] = store.list_audit(action="model.load")
        assert entry.outcome == "ok" and entry.detail.startswith(f"host {host}; ")
    finally:
        pool.close()


def test_two_loads_at_once_reserve_on_their_host(servers, store, tmp_path, admin, need_gib):
    # spread puts the first on c; with it in flight, c has too little left for a second
    sizes = (0.5 * need_gib, 1.3 * need_gib, 1.6 * need_gib)
    hold = threading.Event()
    for server in servers:
        server.add_model("second:1b")
        server.add_model("first:1b", load_hold=hold if server is servers[2] else None)
    reservations = Reservations()
    pool, service = placed_service(servers, store, tmp_path, admin, sizes, "spread", reservations)
    results: list[LoadResult | BaseException] = []

    def first() -> None:
        try:
            results.append(service.load(admin, "first:1b", CTX))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    thread = threading.Thread(target=first)
    try:
        pool.refresh()
        thread.start()
        assert servers[2].wait_until(lambda events: events.loads_held >= 1, timeout_s=30)
        [in_flight] = reservations.held("c")
        assert in_flight.model == "first:1b" and reservations.held("b") == ()
        second = service.load(admin, "second:1b", CTX)
        assert second.decision.host == "b"
        assert "[c: refuse" in second.decision.reasons[0]  # c's room is promised to the first
    finally:
        hold.set()
        thread.join(timeout=30)
        pool.close()
    [first_result] = results
    assert isinstance(first_result, LoadResult) and first_result.decision.host == "c"
    assert loaded_names(servers[2]) == ["first:1b"] and loaded_names(servers[1]) == ["second:1b"]
    assert reservations.held() == ()


def test_no_host_admits_the_load_refused_with_every_hosts_numbers(
    servers, store, tmp_path, admin, need_gib
):
    sizes = (0.4 * need_gib, 0.6 * need_gib, 0.8 * need_gib)
    pool, service = placed_service(servers, store, tmp_path, admin, sizes)
    try:
        with pytest.raises(AdmissionRefused) as caught:
            service.load(admin, BUNDLED_NAME, CTX)
        text = str(caught.value)
        assert "No host admits it (3 checked)" in text
        for name in NAMES:
            assert f"{name}: refuse, " in text and "declared" in text
        assert caught.value.decision.host == "c"  # the closest to fitting
        assert [loaded_names(s) for s in servers] == [[], [], []]
        [entry] = store.list_audit(action="model.load")
        assert entry.outcome == "refused" and entry.detail.startswith("host c; ")
        forced = service.load(admin, BUNDLED_NAME, CTX, override=True)
        assert forced.overridden and forced.decision.host == "c"
        assert loaded_names(servers[2]) == [BUNDLED_NAME]
        assert store.list_audit(action="model.load.override")[0].outcome == "ok"
    finally:
        pool.close()


@pytest.fixture
def mixed_pool(servers, vllm_double: OpenAIDouble) -> Iterator[EnginePool]:
    """a: 1 GiB declared, b: 48 GiB declared, v: a vLLM server (80 GiB declared, but taken)."""
    vllm = EngineSpec(
        "v", "openai", f"{vllm_double.url}/v1", DOUBLE_API_KEY,
        GpuFacts("declared", declared_vram_gib=80),
    )  # fmt: skip
    members = [declared("a", servers[0].url, 1), declared("b", servers[1].url, 48)]
    pool = EnginePool([*members, member_from_spec(vllm)], interval_s=0.5)
    pool.start()
    yield pool
    pool.close()


def test_the_catalogs_fit_badges_differ_by_host(mixed_pool, store, tmp_path, admin):
    service = service_over(mixed_pool, store, tmp_path)
    small = service.catalog_view(admin, 4096, "f16", "a")
    big = service.catalog_view(admin, 4096, "f16", "b")
    assert (small.host, big.host, small.hosts) == ("a", "b", ("a", "b", "v"))
    assert [r.fit.tag for r in small.rows] == [r.fit.tag for r in big.rows]
    fits = [sum(r.fit.verdict == "full GPU offload" for r in v.rows) for v in (small, big)]
    assert fits[0] < fits[1]
    assert {r.fit.verdict for r in big.rows} <= {"full GPU offload", "will not fit"}
    assert service.catalog_view(admin, 4096, "f16").host == "b"  # default: the roomiest
    taken = service.catalog_view(admin, 4096, "f16", "v")
    assert {r.fit.verdict for r in taken.rows} == {"will not fit"}
    assert "taken by vLLM" in taken.machine.unknown
    decision = service.check(admin, BUNDLED_NAME, CTX, host="a")
    assert decision.host == "a" and "declared" in " ".join(decision.reasons)


@pytest.mark.parametrize("host", ["zzz", ["a"], {"b": 1}, 3, "a\x00", "\ud800"])
def test_a_host_that_is_not_an_engine_of_the_pool_is_named(
    mixed_pool, store, tmp_path, admin, host
):
    service = service_over(mixed_pool, store, tmp_path)
    with pytest.raises(ModelInputError, match="Host must be one of the engines \\(a, b, v\\)"):
        service.catalog_view(admin, 4096, "f16", host)
    with pytest.raises(ModelInputError, match="Host must be one of the engines"):
        service.check(admin, BUNDLED_NAME, CTX, host=host)


def test_a_single_engine_has_no_host_to_pick(servers, store, tmp_path, admin):
    engine = OllamaEngine(servers[0].url, timeout_s=30)
    hardware = HardwareMonitor(tmp_path, tmp_path / "models", nvml=FakeNvml([]))
    service = ModelService(store, lambda: engine, hardware, CATALOG)
    try:
        view = service.catalog_view(admin, 4096, "f16")
        assert (view.host, view.hosts) == ("", ())
        with pytest.raises(ModelInputError, match="one engine here; there is no host 'b'"):
            service.catalog_view(admin, 4096, "f16", "b")
        assert service.load(admin, BUNDLED_NAME, CTX).decision.host == ""
        assert loaded_names(servers[0]) == [BUNDLED_NAME]
    finally:
        engine.close()


def test_the_models_tab_picks_the_host_and_says_where_a_load_went(mixed_pool, tmp_path):
    services = services_on(tmp_path, FakeNvml([]), engine=mixed_pool)
    services.users.add_user(CLI, "root", "root-pass-123", "admin")
    handlers = ModelsHandlers(services)
    admin = StubRequest("root")
    assert handlers.hosts() == [ROOMIEST, "a", "b", "v"]
    page = handlers.catalog(admin, 4096, "f16", ANY_FAMILY, ANY_SIZE, False, ROOMIEST)
    assert 'data-host="b"' in page.machine_html and "48 GiB declared" in page.machine_html
    taken = handlers.catalog(admin, 4096, "f16", ANY_FAMILY, ANY_SIZE, False, "v")
    assert "GPU memory not known" in taken.machine_html and "vLLM" in taken.machine_html
    with pytest.raises(ModelInputError, match="Host must be one of the engines"):
        handlers.catalog(admin, 4096, "f16", ANY_FAMILY, ANY_SIZE, False, ["b"])
    html, tag, _ = handlers.select(admin, 0, page.tags, 4096, "f16", "a")
    assert tag == page.tags[0] and "estimate on host a" in html
    outcome = handlers.load(admin, BUNDLED_NAME, CTX, False)
    assert not outcome.refused and outcome.notice == f"{BUNDLED_NAME} is loaded on b."


@pytest.mark.parametrize(("placement", "host"), [("spread", "c"), ("pack", "b")])
def test_a_chat_for_a_model_nobody_has_loaded_goes_where_placement_would_load_it(
    servers, store, tmp_path, admin, need_gib, placement, host
):
    sizes = (0.5 * need_gib, 1.5 * need_gib, 3 * need_gib)
    pool, service = placed_service(servers, store, tmp_path, admin, sizes, placement)
    pool.placement_hint = service.chat.chat_placement  # as the app's services wire it
    try:
        assert service.chat.chat_placement(BUNDLED_NAME, CTX) == host
        reply = list(pool.chat(BUNDLED_NAME, [ChatMessage("user", "hi")], ChatOptions(num_ctx=CTX)))
        assert reply
        asked = {name: s.events.chat_requests for name, s in zip(NAMES, servers, strict=True)}
        assert asked == {name: int(name == host) for name in NAMES}
    finally:
        pool.close()
