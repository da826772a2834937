"""ModelListings: one engine read per interval, shared by the turns that arrive meanwhile."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import pytest

from backend.engines.base import EngineUnavailable, InstalledModel, LoadedModel
from backend.engines.listings import ModelListings
from tests.support.fakes import ScriptedEngine


@dataclass
class CountingEngine(ScriptedEngine):
    """Counts list calls; `hold` makes a list call wait (an engine slow to answer)."""

    list_calls: int = 0
    ps_calls: int = 0
    hold: threading.Event | None = None

    def list_models(self) -> list[InstalledModel]:
        self.list_calls += 1
        if self.hold is not None:
            self.hold.wait(10)
        return super().list_models()

    def loaded_models(self) -> list[LoadedModel]:
        self.ps_calls += 1
        return super().loaded_models()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_callers_within_the_interval_share_one_read_and_a_later_one_reads_again() -> None:
    engine, clock = CountingEngine(models=("a:1b",)), Clock()
    listings = ModelListings(lambda: engine, ttl_s=1.0, refresh_after_s=None, clock=clock)
    assert [m.name for m in listings.installed()] == ["a:1b"]
    engine.models = ("a:1b", "b:2b")
    clock.now += 0.5
    assert [m.name for m in listings.installed()] == ["a:1b"]  # the shared answer
    assert engine.list_calls == 1
    clock.now += 0.6
    assert [m.name for m in listings.installed()] == ["a:1b", "b:2b"]
    assert engine.list_calls == 2
    listings.loaded()
    listings.loaded()
    assert engine.ps_calls == 1


def test_past_a_second_a_turn_gets_the_lists_at_once_while_the_engine_is_read_again() -> None:
    """The default: no turn waits on /api/tags or /api/ps under steady use; none is given lists
    older than ttl_s."""
    hold = threading.Event()
    engine, clock = CountingEngine(models=("a:1b",)), Clock()
    listings = ModelListings(lambda: engine, clock=clock)  # ttl 3 s, refreshed after 1 s
    assert [m.name for m in listings.installed()] == ["a:1b"]
    engine.models, engine.hold = ("a:1b", "b:2b"), hold  # the engine is slow to answer now
    clock.now += 1.5
    assert [m.name for m in listings.installed()] == ["a:1b"]  # at once, not behind the read
    assert [m.name for m in listings.installed()] == ["a:1b"]  # one background read, not two
    hold.set()
    for _ in range(200):  # the background read lands
        if [m.name for m in listings.installed()] == ["a:1b", "b:2b"]:
            break
        threading.Event().wait(0.01)
    assert [m.name for m in listings.installed()] == ["a:1b", "b:2b"]
    assert engine.list_calls == 2
    clock.now += 3.5  # nobody asked for longer than ttl_s: the caller reads, and waits for it
    engine.models = ("c:3b",)
    assert [m.name for m in listings.installed()] == ["c:3b"]
    assert engine.list_calls == 3


def test_a_background_read_that_fails_keeps_the_lists_until_they_age_out() -> None:
    engine, clock = CountingEngine(models=("a:1b",)), Clock()
    listings = ModelListings(lambda: engine, clock=clock)
    listings.installed()
    engine.listing = False  # the engine stops answering
    clock.now += 1.5
    assert [m.name for m in listings.installed()] == ["a:1b"]  # the refresh failed behind it
    for _ in range(200):
        if engine.list_calls == 2:
            break
        threading.Event().wait(0.01)
    clock.now += 2.0  # past ttl_s: the next turn asks, and sees the engine's error
    with pytest.raises(EngineUnavailable):
        listings.installed()


def test_forget_makes_the_next_caller_read_afresh() -> None:
    engine, clock = CountingEngine(models=("a:1b",)), Clock()
    listings = ModelListings(lambda: engine, ttl_s=60.0, clock=clock)
    listings.installed(), listings.loaded()
    engine.models = ()
    listings.forget()
    assert listings.installed() == [] and listings.loaded() == []
    assert (engine.list_calls, engine.ps_calls) == (2, 2)


def test_a_failure_is_not_kept() -> None:
    engine, clock = CountingEngine(models=("a:1b",), listing=False), Clock()
    listings = ModelListings(lambda: engine, ttl_s=60.0, clock=clock)
    with pytest.raises(EngineUnavailable):
        listings.installed()
    engine.listing = True
    assert [m.name for m in listings.installed()] == ["a:1b"]
    assert engine.list_calls == 2


def test_a_swapped_engine_is_read_at_once() -> None:
    first, second, clock = CountingEngine(models=("a:1b",)), CountingEngine(models=()), Clock()
    current = [first]
    listings = ModelListings(lambda: current[0], ttl_s=60.0, clock=clock)
    listings.installed()
    current[0] = second
    assert listings.installed() == []
    assert (first.list_calls, second.list_calls) == (1, 1)


def test_many_callers_at_once_cause_one_read() -> None:
    hold = threading.Event()
    engine = CountingEngine(models=("a:1b",), hold=hold)
    listings = ModelListings(lambda: engine, ttl_s=60.0)
    answers: list[list[str]] = []

    def ask() -> None:
        answers.append([m.name for m in listings.installed()])

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    hold.set()
    for thread in threads:
        thread.join(10)
    assert answers == [["a:1b"]] * 20
    assert engine.list_calls == 1


def test_a_read_that_straddles_forget_is_not_kept() -> None:
    """An admin deletes a model while a turn's read of the old list is on its way."""
    engine, clock = CountingEngine(models=("a:1b",)), Clock()
    listings = ModelListings(lambda: engine, ttl_s=60.0, clock=clock)

    def forgetting_list() -> list[InstalledModel]:
        listing = ScriptedEngine.list_models(engine)
        listings.forget()  # the delete lands between the engine's answer and its keeping
        return listing

    engine.list_models = forgetting_list  # type: ignore[method-assign]
    assert [m.name for m in listings.installed()] == ["a:1b"]
    engine.models = ()
    engine.list_models = lambda: ScriptedEngine.list_models(engine)  # type: ignore[method-assign]
    assert listings.installed() == []


@dataclass
class DescribingEngine(CountingEngine):
    """Lists its models with digests (the file each name is now) and counts show calls."""

    digests: dict[str, str] | None = None
    show_calls: int = 0

    def list_models(self) -> list[InstalledModel]:
        digests = self.digests or {}
        return [replace(m, digest=digests.get(m.name, "")) for m in super().list_models()]

    def show(self, model: str) -> object:
        self.show_calls += 1
        return ("spec of", model, (self.digests or {}).get(model, ""))


def test_a_models_description_is_read_once_per_installed_file() -> None:
    engine = DescribingEngine(models=("a:1b", "b:2b"), digests={"a:1b": "sha256:1"})
    clock = Clock()
    listings = ModelListings(lambda: engine, ttl_s=1.0, refresh_after_s=None, clock=clock)
    first = listings.spec("a:1b")
    clock.now += 600  # long after the lists' interval: the file is the same
    assert listings.spec("A:1B") == first and engine.show_calls == 1
    engine.digests = {"a:1b": "sha256:2"}  # pulled again: another file
    clock.now += 2
    assert listings.spec("a:1b") == ("spec of", "a:1b", "sha256:2") and engine.show_calls == 2


def test_a_model_listed_without_a_digest_is_described_every_time() -> None:
    engine = DescribingEngine(models=("b:2b",))
    listings = ModelListings(lambda: engine, ttl_s=60.0, clock=Clock())
    listings.spec("b:2b")
    listings.spec("b:2b")
    listings.spec("not-installed:1b")  # the engine answers (here: a spec; Ollama: 404)
    assert engine.show_calls == 3


def test_forget_drops_the_descriptions_too() -> None:
    engine = DescribingEngine(models=("a:1b",), digests={"a:1b": "sha256:1"})
    listings = ModelListings(lambda: engine, ttl_s=60.0, clock=Clock())
    listings.spec("a:1b")
    listings.forget()
    listings.spec("a:1b")
    assert engine.show_calls == 2
