"""Which facts an estimate starts from: the installed file's own tensors (exact) when the engine
has the model, else the catalog entry's shapes and llama.cpp's recipe."""

from __future__ import annotations

from collections.abc import Callable

from backend.engines.base import EngineError, ModelNotFound
from backend.estimate.catalog import Catalog, spec_for
from backend.estimate.spec import ModelSpec


def resolve_spec(
    model: str, catalog: Catalog, show: Callable[[str], ModelSpec]
) -> tuple[ModelSpec, tuple[ModelSpec, ...]]:
    """The spec to estimate `model` from, and the catalog's other quantizations of it.

    show is the engine's /api/show (or GGUF header) reader; when it does not know the model or
    cannot be reached, the catalog answers; when neither does, the error says so.
    """
    entry = catalog.find(model)
    option = (catalog.quant_for_tag(model) or entry.quant()) if entry else None
    others = tuple(spec_for(entry, q.quant) for q in entry.quants if q != option) if entry else ()
    try:
        return show(model), others
    except ModelNotFound as exc:
        if entry is None or option is None:
            raise ModelNotFound(
                model,
                f"'{model}' is neither in the catalog nor installed on the engine, so its "
                "memory cannot be estimated; pull it first.",
            ) from exc
    except EngineError:
        if entry is None or option is None:
            raise
    return spec_for(entry, option.quant), others  # the catalog's facts
