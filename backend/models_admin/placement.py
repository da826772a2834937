"""Placement of a load on a pool: admission's decision on every host, then the host chosen by
the placement policy. `spread` picks the host admission admits with the most headroom left after
the load; `pack` the one with the least headroom that still admits it. A clean admit beats an
admit with a warning (a partial offload, an eviction) whatever the headroom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from backend.admission import Decision
from backend.admission.settings import PlacementPolicy
from backend.models_admin.hosts import Host
from backend.units import format_size

_RANK = {"refuse": 0, "warn": 1, "admit": 2}


@dataclass(frozen=True)
class HostDecision:
    """Admission's decision for one host."""

    host: Host
    decision: Decision

    @property
    def headroom_bytes(self) -> int:
        """What this host keeps free after the load: GPU memory (RAM on a GPU-less machine).
        Negative by what it lacks when the load does not fit there whole."""
        d, machine = self.decision, self.host.machine
        p, total = d.placement, d.estimate.total_bytes
        if machine.has_gpu:
            return d.free_vram_bytes - (p.vram_bytes if p.verdict == "full GPU offload" else total)
        return d.free_ram_bytes - (p.ram_bytes if p.verdict == "CPU only" else total)

    def line(self) -> str:
        """The host with its numbers, one line of a refusal or of the reason for a choice."""
        d, machine = self.decision, self.host.machine
        if machine.unknown:
            return f"{self.host.name}: {d.verdict}, {machine.unknown}"
        if d.already_loaded:
            return f"{self.host.name}: has it loaded at num_ctx {d.num_ctx} already"
        ram = f" + {format_size(d.free_ram_bytes)} RAM" if machine.ram_known else ""
        facts = f" ({machine.facts})" if machine.facts else ""
        return (
            f"{self.host.name}: {d.verdict}, {format_size(d.free_vram_bytes)} VRAM{ram} "
            f"available{facts}, needs {format_size(d.placement.vram_bytes)} VRAM + "
            f"{format_size(d.placement.ram_bytes)} RAM ({d.placement.verdict})"
        )


def choose(judged: Sequence[HostDecision], policy: PlacementPolicy) -> HostDecision | None:
    """The host the load goes to, None when admission admits it nowhere. A host that has the
    model loaded at this context already is chosen first: there is nothing to load."""
    loaded = [j for j in judged if j.decision.already_loaded]
    if loaded:
        return loaded[0]
    admitted = [j for j in judged if j.decision.admitted]
    if not admitted:
        return None
    best = max(_RANK[j.decision.verdict] for j in admitted)
    admitted = [j for j in admitted if _RANK[j.decision.verdict] == best]
    if policy == "pack":
        return min(admitted, key=lambda j: j.headroom_bytes)
    return max(admitted, key=lambda j: j.headroom_bytes)


def why(chosen: HostDecision, judged: Sequence[HostDecision], policy: PlacementPolicy) -> str:
    """Why the load goes to this host: the policy, and every host's numbers."""
    if chosen.decision.already_loaded:
        head = f"Host {chosen.host.name} has it loaded already."
    elif len(judged) == 1:
        head = f"Host {chosen.host.name} is the only engine that can load it."
    else:
        most = "most" if policy == "spread" else "least"
        head = (
            f"Host {chosen.host.name} chosen by placement {policy}: the {most} headroom "
            f"({format_size(max(chosen.headroom_bytes, 0))} GPU memory left after the load) "
            f"of {len(judged)} hosts."
        )
    return " ".join([head, *(f"[{j.line()}]" for j in judged)])


def placed(
    chosen: HostDecision, judged: Sequence[HostDecision], policy: PlacementPolicy
) -> Decision:
    """The chosen host's decision, naming the host and why it was chosen."""
    d = chosen.decision
    return replace(d, host=chosen.host.name, reasons=(why(chosen, judged, policy), *d.reasons))


def refused(judged: Sequence[HostDecision]) -> Decision:
    """No host admits the load: the least bad host's decision, headed by every host's numbers."""
    best = max(judged, key=lambda j: (not j.host.machine.unknown, j.headroom_bytes))
    lines = [f"No host admits it ({len(judged)} checked):", *(j.line() + "." for j in judged)]
    d = best.decision
    return replace(
        d, host=best.host.name, reasons=(*lines, f"Closest: {best.host.name}.", *d.reasons)
    )
