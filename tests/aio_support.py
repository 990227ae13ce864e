"""Running the async tests on both event loops the package supports."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import uvloop

T = TypeVar("T")

Runner = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture(params=["asyncio", "uvloop"], name="run")
def run_fixture(request: pytest.FixtureRequest) -> Runner[Any]:
    """Runs a coroutine to completion on a fresh loop of the parametrised kind."""
    if request.param == "uvloop":
        return uvloop.run
    return asyncio.run


def native_threads() -> int:
    """Threads of this process, Python's and native ones (the engine's)."""
    return len(os.listdir("/proc/self/task"))


async def gather_all(*aws: Awaitable[T]) -> list[T]:
    return list(await asyncio.gather(*aws))
