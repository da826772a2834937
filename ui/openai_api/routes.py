"""GET /v1/models and POST /v1/chat/completions: Hearth as an OpenAI-compatible endpoint.

Routes on the Gradio server's FastAPI app, like the operator routes: outside Gradio's login and
its cookies. The caller is the owner of the Bearer key (backend.auth.api_keys), checked on every
request; the turn is ChatService.exchange, so the page's validation, admission, limits, fair
line, usage (source 'api') and metrics all apply. The response starts once the turn has its
first token (or its refusal), so a refusal always gets its own HTTP status and error body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from backend.chat.turns import TurnEvent, TurnFinished, TurnStarted, coalesce_deltas
from backend.services import ChatDelta, EngineError, Message, User
from ui.openai_api import wire
from ui.openai_api.bridge import TurnBridge, watch_disconnect
from ui.openai_api.errors import api_error, engine_down
from ui.openai_api.wire import ApiError, CompletionRequest

if TYPE_CHECKING:
    from backend.services import Services

MAX_BODY_BYTES = 8 * 1024 * 1024  # more than the longest history the chat rules admit
_log = logging.getLogger(__name__)


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


async def read_json(request: Request) -> object:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"The request body is over {MAX_BODY_BYTES:,} bytes.")
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"The request body is over {MAX_BODY_BYTES:,} bytes.")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise wire.invalid(f"The request body is not valid JSON: {exc}.") from exc


def _created(iso: str) -> int:
    try:
        return int(datetime.fromisoformat(iso).timestamp())
    except (TypeError, ValueError):
        return 0


class OpenAIRoutes:
    """The handlers, over the one Services object."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def caller(self, request: Request) -> User:
        header = request.headers.get("authorization")
        try:
            return await run_in_threadpool(self.services.api_keys.resolve, header)
        except Exception as exc:
            raise api_error(exc) from exc

    async def models(self, request: Request) -> Response:
        try:
            user = await self.caller(request)
            served = await run_in_threadpool(self.services.served_models, user)
        except ApiError as error:
            return error_response(error)
        except EngineError as exc:
            return error_response(engine_down(str(exc)))
        data = [{"id": m.name, "object": "model", "created": _created(m.modified_at),
                 "owned_by": "hearth", "context_length": m.context_length}
                for m in served]  # fmt: skip
        return JSONResponse({"object": "list", "data": data})

    async def chat_completions(self, request: Request) -> Response:
        try:
            user = await self.caller(request)
            asked = wire.completion_request(await read_json(request))
        except ApiError as error:
            return error_response(error)
        chat = self.services.chat
        # Deltas within 50 ms go as one chunk, as the page gets them: at 100+ tok/s a chunk
        # costs the server and the client more than the token it carries.
        bridge: TurnBridge[TurnEvent] = TurnBridge(
            lambda cancel: coalesce_deltas(
                chat.exchange(user, asked.messages, asked.settings, cancel, persist=asked.store)
            )
        )
        watcher = asyncio.create_task(watch_disconnect(request, bridge.cancel))
        turn = Turn(asked, bridge)
        try:
            await turn.first()
            if asked.stream:  # the stream's own end (or the client leaving) ends the watcher
                return StreamingResponse(turn.sse(watcher), media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache"})  # fmt: skip
            body = await turn.whole()
        except ApiError as error:
            watcher.cancel()
            return error_response(error)
        except BaseException:
            watcher.cancel()
            raise
        watcher.cancel()
        return JSONResponse(body)


class Turn:
    """One completion: reads the turn's events up to its first token, then as asked."""

    def __init__(self, asked: CompletionRequest, bridge: TurnBridge[TurnEvent]) -> None:
        self.asked = asked
        self.bridge = bridge
        self.events = aiter(bridge)
        self.reply_id = wire.completion_id()
        self.created = int(time.time())
        self.model = asked.settings.model
        self.pending: list[ChatDelta | TurnFinished] = []

    async def _next(self) -> TurnEvent | None:
        try:
            return await anext(self.events)
        except StopAsyncIteration:
            return None
        except Exception as exc:
            raise api_error(exc) from exc

    async def first(self) -> None:
        """Wait (in line, for the engine) for the first token or the end; refusals raise."""
        while (event := await self._next()) is not None:
            if isinstance(event, TurnStarted):
                self.model = event.conversation.model
            elif isinstance(event, ChatDelta | TurnFinished):
                if isinstance(event, TurnFinished) and event.reply.status == "error":
                    raise engine_down(event.reply.error)
                self.pending.append(event)
                return
        raise ApiError(500, "The turn ended without a reply.", "server_error")

    async def rest(self) -> AsyncIterator[ChatDelta | TurnFinished]:
        for pending in self.pending:
            yield pending
        while (event := await self._next()) is not None:
            if isinstance(event, ChatDelta | TurnFinished):
                yield event

    async def whole(self) -> dict[str, Any]:
        async for event in self.rest():
            if isinstance(event, TurnFinished):
                return self._completion(event.reply)
        raise ApiError(500, "The turn ended without a reply.", "server_error")

    def _completion(self, reply: Message) -> dict[str, Any]:
        if reply.status in ("error", "interrupted"):
            raise engine_down(reply.error or "The reply was cut short.")
        limit = self.asked.settings.options.num_predict
        return wire.completion(self.reply_id, self.created, self.model, reply, limit)

    def _data(self, body: dict[str, Any]) -> str:
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    def _chunk(self, delta: dict[str, str], finish: str | None = None) -> str:
        return self._data(wire.chunk(self.reply_id, self.created, self.model, delta, finish,
                                     with_usage=self.asked.include_usage))  # fmt: skip

    async def sse(self, watcher: asyncio.Task[None]) -> AsyncIterator[str]:
        """OpenAI's stream: a role chunk, content chunks, the finish chunk, usage, [DONE]."""
        finished = False
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            async for event in self.rest():
                if isinstance(event, ChatDelta):
                    yield self._chunk({"content": event.text})
                    continue
                yield self._ending(event.reply)
                finished = True
        except ApiError as error:
            yield self._data(error.body())
            finished = True
        finally:
            if not finished:  # the client went away (or the server is stopping): Stop the turn
                self.bridge.cancel.set()
            watcher.cancel()
        yield "data: [DONE]\n\n"

    def _ending(self, reply: Message) -> str:
        if reply.status in ("error", "interrupted"):
            return self._data(engine_down(reply.error or "The reply was cut short.").body())
        limit = self.asked.settings.options.num_predict
        ending = self._chunk({}, wire.finish_reason(reply, limit))
        if self.asked.include_usage:
            ending += self._data(wire.usage_chunk(self.reply_id, self.created, self.model, reply))
        return ending


def openai_routes(services: Services) -> list[Route]:
    handlers = OpenAIRoutes(services)
    return [
        Route("/v1/models", handlers.models, methods=["GET"]),
        Route("/v1/chat/completions", handlers.chat_completions, methods=["POST"]),
    ]
