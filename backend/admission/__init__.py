"""Admission control: admit, warn about or refuse a model load before the engine tries it."""

from backend.admission.decision import decide, suggestions
from backend.admission.reservations import Reservations
from backend.admission.settings import POLICIES, AdmissionError, AdmissionSettings, Policy
from backend.admission.types import (
    AdmissionVerdict,
    Budget,
    Decision,
    LoadRequest,
    Machine,
    Reservation,
    Suggestion,
)

__all__ = [
    "POLICIES",
    "AdmissionError",
    "AdmissionSettings",
    "AdmissionVerdict",
    "Budget",
    "Decision",
    "LoadRequest",
    "Machine",
    "Policy",
    "Reservation",
    "Reservations",
    "Suggestion",
    "decide",
    "suggestions",
]
