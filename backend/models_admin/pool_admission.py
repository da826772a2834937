"""Admission over a pool's hosts: each engine that can load the model judged on its own host's
memory, loaded models, reservations and learned margin; then placement's pick (spread or pack),
or a refusal that lists every host with its numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from backend.admission import Decision, LoadRequest, decide
from backend.admission.reservations import HeldOn
from backend.admission.settings import AdmissionSettings
from backend.engines.base import EngineUnavailable, LoadedModel
from backend.models_admin.hosts import Host, Hosts
from backend.models_admin.load_records import LoadRecords
from backend.models_admin.placement import HostDecision, choose, placed, refused


class PoolAdmission:
    def __init__(self, hosts: Hosts, records: LoadRecords) -> None:
        self._hosts = hosts
        self._records = records

    def judge(
        self,
        request: LoadRequest,
        hosts: list[Host],
        held_on: HeldOn,
        settings: AdmissionSettings,
        actor: str,
    ) -> list[HostDecision]:
        """Admission's decision on each host, with its loaded models, reservations and margin."""
        return [
            HostDecision(host, decide(request, host.machine, host.loaded, held_on(host.name),
                         settings, learned=self._records.learned_margin(host.url, actor)))
            for host in hosts
        ]  # fmt: skip

    def preview(
        self, request: LoadRequest, named: Host | None, held_on: HeldOn, settings: AdmissionSettings
    ) -> Decision:
        """What admission says on the named host, or (None) on the host placement would pick."""
        hosts = [named] if named is not None else self._hosts.targets(request.model)
        judged = self.judge(request, hosts, held_on, settings, "system")
        if named is not None:
            return replace(judged[0].decision, host=named.name)
        return placed_or_refused(judged, settings)[1]

    def chooser(
        self,
        request: LoadRequest,
        settings: AdmissionSettings,
        actor: str,
        force: bool,
        chosen: list[Host],
    ) -> Callable[[HeldOn], tuple[str, Decision]]:
        """The placement run under the reservations lock: every host read and judged there, so
        a second load in flight sees the first one's reservation; the pick goes to `chosen`."""

        def pooled(held_on: HeldOn) -> tuple[str, Decision]:
            hosts = self._hosts.targets(request.model)
            judged = self.judge(request, hosts, held_on, settings, actor)
            pick, decision = placed_or_refused(judged, settings, force)
            chosen.extend([pick.host] if pick is not None else [])
            return decision.host, decision

        return pooled

    def load_on(self, target: Host, model: str, num_ctx: int) -> list[LoadedModel]:
        """Load on the pool engine placement chose; what that engine has loaded after."""
        pool = self._hosts.pool()
        if pool is None:
            raise EngineUnavailable(f"Engine '{target.name}' is no longer configured.")
        pool.load_on(target.name, model, num_ctx)
        member = pool.member(target.name)
        return list(member.state.loaded) if member is not None else []


def placed_or_refused(
    judged: list[HostDecision], settings: AdmissionSettings, force: bool = False
) -> tuple[HostDecision | None, Decision]:
    """Placement's pick and its decision; else no pick (the closest host when `force`) and the
    refusal with every host's numbers."""
    pick = choose(judged, settings.placement)
    if pick is not None:
        return pick, placed(pick, judged, settings.placement)
    decision = refused(judged)
    closest = next(j for j in judged if j.host.name == decision.host)
    return (closest if force else None), decision
