"""What each refusal of an API turn is in OpenAI's terms: status, type, code, Retry-After."""

from __future__ import annotations

import logging

from backend.auth import AccountError, ApiKeyRefused, PermissionDenied
from backend.chat.limits import LimitReached
from backend.chat.shutdown import ShuttingDown
from backend.chat.turn_values import TurnRefused
from backend.chat.turns import ChatInputError, LineBusy
from backend.chat.validation import MODEL_NOT_FOUND
from ui.openai_api.wire import ApiError

_log = logging.getLogger(__name__)
RETRY_TURN_S = 1.0  # a limit on turns in flight frees when a turn ends: try again soon


def engine_down(detail: str) -> ApiError:
    return ApiError(503, f"The engine could not answer: {detail}", "server_error",
                    code="engine_unavailable")  # fmt: skip


def api_error(exc: Exception) -> ApiError:
    """The ApiError for an exception raised by a key check or a turn; unknown ones are 500."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ApiKeyRefused):
        return ApiError(401, str(exc), "invalid_request_error", code="invalid_api_key")
    if isinstance(exc, LimitReached):
        quota = exc.limit == "reply_tokens_per_day"
        return ApiError(429, str(exc), "insufficient_quota" if quota else "requests",
                        code="insufficient_quota" if quota else "rate_limit_exceeded",
                        retry_after_s=exc.retry_after_s or RETRY_TURN_S)  # fmt: skip
    if isinstance(exc, LineBusy):
        return ApiError(429, str(exc), "requests", code="server_busy",
                        retry_after_s=exc.retry_after_s or RETRY_TURN_S)  # fmt: skip
    if isinstance(exc, ShuttingDown):
        return ApiError(503, str(exc), "server_error", code="shutting_down")
    if isinstance(exc, TurnRefused):
        return ApiError(400, str(exc), param="model", code="model_not_admitted")
    if isinstance(exc, ChatInputError) and exc.reason == MODEL_NOT_FOUND:
        return ApiError(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, ChatInputError | AccountError):
        return ApiError(400, str(exc))
    if isinstance(exc, PermissionDenied):
        return ApiError(403, str(exc), "permission_error")
    _log.error("API turn failed", exc_info=exc)
    return ApiError(500, "Hearth failed to answer; the error is in its log.", "server_error")
