"""What every engine's httpx client is given: responses that free themselves when dropped.

httpx binds each response's body stream to the response (to time it on close), and the
response holds that stream: a reference cycle, so a finished response, its request, headers
and connection objects (~56 objects) wait for the cycle collector instead of being freed at
once. Under many chats that is every engine request of every turn, and the full collections
that free them pause the whole app. The hook makes the stream's link back a weak one.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


def response_hooks() -> dict[str, list[Any]]:
    """httpx's `event_hooks` for a client whose responses leave no cycle behind."""
    return {"response": [unbind_stream]}


def unbind_stream(response: httpx.Response) -> None:
    """Make the body stream's reference to its response weak (httpx's BoundSyncStream)."""
    stream = response.stream
    if getattr(stream, "_response", None) is response:  # httpx 0.28's private link
        stream._response = weakref.proxy(response)  # type: ignore[union-attr]
