"""Admission settings kept in the store's settings table: read leniently (a hand-edited database
must not lock every load out), written with an audit row naming every change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields

from backend.admission.settings import AdmissionSettings
from backend.store.database import Store

ADMISSION_KEY = "admission.settings"


def read_settings(store: Store) -> AdmissionSettings:
    stored = store.get_setting(ADMISSION_KEY, None)
    if not isinstance(stored, dict):
        return AdmissionSettings()
    known = {f.name for f in fields(AdmissionSettings)}
    values = {k: v for k, v in stored.items() if k in known}
    if values.get("kv_cache_type", "f16") != "f16":
        values.setdefault("flash_attention", True)  # stored before flash attention was a field
    try:
        return AdmissionSettings(**values)
    except (TypeError, ValueError):
        return AdmissionSettings()


def write_settings(
    store: Store, actor: str, settings: AdmissionSettings | Mapping[str, object]
) -> None:
    """Store new settings (or the raw values a form sent, validated here), audited."""
    if not isinstance(settings, AdmissionSettings):
        settings = AdmissionSettings(**settings)  # type: ignore[arg-type]
    before = read_settings(store)
    store.set_setting(ADMISSION_KEY, asdict(settings))
    store.audit(
        actor=actor,
        action="admission.settings",
        detail=(
            f"policy {before.policy} -> {settings.policy}; placement {before.placement} -> "
            f"{settings.placement}; margin {before.describe_margin()} -> "
            f"{settings.describe_margin()}; engine {before.describe_engine()} -> "
            f"{settings.describe_engine()}"
        ),
    )
