"""The hosts a load can go to, each as admission's Machine: the single engine's machine (local
NVML), or every engine of a pool by its gpu_facts (backend.engines.host_memory).

A host of a pool whose GPU memory is not known (no gpu_facts, a DCGM exporter that does not
answer, a vLLM server whose GPU is taken) becomes a Machine with `unknown` set: admission refuses
to place a load there by numbers it does not have. Another host's RAM is not known: its Machine
has `ram_known=False`, and admission places only full GPU offloads there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from backend.admission import Machine
from backend.engines.base import Engine, EngineUnavailable, LoadedModel, quote_value
from backend.engines.host_memory import HostMemory
from backend.engines.pool import EnginePool
from backend.engines.pool_member import PoolMember
from backend.estimate.catalog import FitRow
from backend.hardware.monitor import HardwareMonitor, HardwareSnapshot
from backend.models_admin.inputs import ModelInputError, shown_value

MAX_HOST_NAME_CHARS = 40  # engine names are 1-40 characters (backend.engines.config)


@dataclass(frozen=True)
class Host:
    """One place a load can go: a pool's engine (name), or the single engine (name "")."""

    name: str
    url: str  # where its load records say it loaded ("" on a single engine: its own address)
    machine: Machine
    loaded: tuple[LoadedModel, ...]
    local: bool  # its numbers come from this machine's NVML
    installed: tuple[str, ...] = ()  # the models the engine has (a pool engine's, by name)

    @property
    def known(self) -> bool:
        return not self.machine.unknown


def machine_for(memory: HostMemory, local: Callable[[], Machine]) -> Machine:
    """Admission's Machine for a pool engine's host memory."""
    if memory.kind == "local":
        return replace(local(), facts="this machine's NVML")
    if memory.kind == "known":
        return Machine(
            memory.free_vram_bytes, memory.total_vram_bytes, 0, 0,
            ram_known=False, facts=memory.source,
        )  # fmt: skip
    return Machine(0, 0, 0, 0, ram_known=False, unknown=memory.source)


def gpu_only(rows: list[FitRow]) -> list[FitRow]:
    """Fit rows for a host whose RAM is not known: what needs RAM beyond the host part does not
    fit there (admission places only full GPU offloads on such a host)."""
    return [
        row
        if row.verdict == "full GPU offload"
        else replace(row, verdict="will not fit", tokens_per_s_bound=None)
        for row in rows
    ]


class Hosts:
    """Reads the hosts of the engine in use: one (no pool) or one per pool engine."""

    def __init__(
        self, engine: Callable[[], Engine], hardware: HardwareMonitor, ram_bandwidth_gbps: float
    ) -> None:
        self._engine = engine
        self._hardware = hardware
        self._ram_bandwidth_gbps = ram_bandwidth_gbps

    def pool(self) -> EnginePool | None:
        engine = self._engine()
        return engine if isinstance(engine, EnginePool) else None

    def local_machine(self, snapshot: HardwareSnapshot | None = None) -> Machine:
        snapshot = snapshot or self._hardware.snapshot()
        return Machine.from_snapshot(snapshot, self._ram_bandwidth_gbps)

    def names(self) -> list[str]:
        """The pool's engine names in configured order; [] on a single engine."""
        pool = self.pool()
        return [m.name for m in pool.members] if pool is not None else []

    def of(self, member: PoolMember) -> Host:
        """The host of one pool engine, read now (an engine that is down has no numbers)."""
        state = member.state
        if not state.up:
            why = f"Engine '{member.name}' is down ({state.detail}); nothing is placed there."
            down = Machine(0, 0, 0, 0, ram_known=False, unknown=why)
            return Host(member.name, member.spec.url, down, (), False)
        memory = member.host_memory()
        machine = machine_for(memory, self.local_machine)
        installed = tuple(m.name for m in state.installed)
        local = memory.kind == "local"
        return Host(member.name, member.spec.url, machine, state.loaded, local, installed)

    def named(self, value: object) -> Host:
        """The pool engine a caller named (any value may arrive); ModelInputError otherwise."""
        pool = self.pool()
        shown = quote_value(value)
        if pool is None:
            raise ModelInputError(f"Hearth runs one engine here; there is no host {shown} to pick.")
        member = pool.member(value) if isinstance(value, str) else None
        if member is None:
            names = ", ".join(m.name for m in pool.members)
            raise ModelInputError(f"Host must be one of the engines ({names}); got {shown}.")
        return self.of(member)

    def targets(self, model: str) -> list[Host]:
        """Where a load of `model` can go: the up engines that manage models and have it; when
        none has it, every up engine that manages models (a preview of where a pull would go)."""
        pool = self.pool()
        if pool is None:
            return []
        members = pool.placement_targets(model)
        if not members:
            members = [m for m in pool.up_members() if m.can_manage_models]
        if not members:
            raise EngineUnavailable(
                f"No engine that can load models is up for {shown_value(model)} "
                "(OpenAI-compatible servers serve what they were started with)."
            )
        return [self.of(member) for member in members]

    def roomiest(self) -> Host | None:
        """The pool engine with the most free GPU memory known (the first when none is known)."""
        pool = self.pool()
        if pool is None:
            return None
        hosts = [self.of(member) for member in pool.members]
        known = [h for h in hosts if h.known]
        return max(known, key=lambda h: h.machine.free_vram_bytes) if known else hosts[0]
