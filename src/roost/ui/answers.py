"""How the dashboard's API answers: JSON of SDK results, and RoostErrors as JSON with a status.

Every route calls the SDK through `blocking` (a worker thread, so one slow call never
stalls the event loop) and lets a RoostError rise; `roost_error` is the one place
it becomes an answer.

Imports: client, errors, starlette and the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from roost.client import Roost
from roost.errors import ConflictError, InvalidArgument, NotFound, RoostError

P = ParamSpec("P")
T = TypeVar("T")


def sdk(connection: HTTPConnection) -> Roost:
    """The SDK instance this server was started with."""
    roost: Roost = connection.app.state.roost
    return roost


async def blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` on a worker thread."""
    return await run_in_threadpool(fn, *args, **kwargs)


def plain(value: Any) -> Any:
    """An SDK result (or a list of them) as JSON-ready data."""
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def answer(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(plain(value), status_code=status)


def status_of(exc: RoostError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidArgument):
        return 400
    if isinstance(exc, ConflictError):
        return 409
    return 500


async def roost_error(_request: Request, exc: Exception) -> Response:
    """A RoostError as `{"error": {"code", "message", "hint"}}`, with a status that fits its kind."""
    assert isinstance(exc, RoostError)
    body = {"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}}
    return JSONResponse(body, status_code=status_of(exc))


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object.

    Raises:
        InvalidArgument: the body is not a JSON object.
    """
    try:
        body = await request.json()
    except ValueError:
        raise InvalidArgument("the request body is not JSON", hint="send a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidArgument("the request body is not a JSON object", hint="send a JSON object")
    return body
