"""Model operations for admins (pull, load, unload, delete, through admission), catalog view."""

from backend.models_admin.service import ModelService
from backend.models_admin.values import (
    AdmissionRefused,
    CatalogRow,
    CatalogView,
    LoadResult,
)

__all__ = ["AdmissionRefused", "CatalogRow", "CatalogView", "LoadResult", "ModelService"]
