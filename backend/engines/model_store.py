"""Where an Ollama server keeps its model files, when that is on this machine.

The pull's free-disk check and the Hardware page need the disk Ollama downloads to. Ollama's FAQ
("Where are models stored?"): OLLAMA_MODELS moves them; the Linux install script runs the
server as the `ollama` user, whose home is /usr/share/ollama, so they land in
/usr/share/ollama/.ollama/models; a server started by hand (and on macOS) uses
~/.ollama/models of the user running it. A server on another machine keeps them there,
where this process cannot measure.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

SERVICE_HOME = Path("/usr/share/ollama")  # created by Ollama's Linux install script
USER_MODELS_DIR = Path("~/.ollama/models")


@dataclass(frozen=True)
class ModelStore:
    """The folder an engine keeps models in, or why it cannot be measured from here."""

    path: Path | None
    unknown_reason: str = ""


def is_this_machine(host_url: str) -> bool:
    """Whether the server at host_url runs here: a loopback or local address, or our name."""
    hostname = (urlsplit(host_url).hostname or "").lower()
    if hostname in ("localhost", "0.0.0.0", "::"):
        return True
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:  # a name: ours, or another machine's (no DNS lookup: getfqdn can hang)
        return hostname == socket.gethostname().lower()
    return address.is_loopback or hostname in _local_addresses()


def _local_addresses() -> set[str]:
    return {
        entry.address.split("%")[0].lower()
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family in (socket.AF_INET, socket.AF_INET6)
    }


def ollama_model_store(
    host_url: str, configured: Path | None, service_home: Path = SERVICE_HOME
) -> ModelStore:
    """Where the Ollama at host_url downloads models (configured: OLLAMA_MODELS, if set)."""
    if not is_this_machine(host_url):
        return ModelStore(
            None,
            f"models are kept by the Ollama server at {host_url}, not on this machine: "
            "check free disk there",
        )
    if configured is not None:
        return ModelStore(configured.expanduser())
    if service_home.is_dir():
        return ModelStore(service_home / ".ollama" / "models")
    return ModelStore(USER_MODELS_DIR.expanduser())
