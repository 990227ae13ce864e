"""Every error is a value that crosses process boundaries: it pickles (as multiprocessing and
concurrent.futures do with a worker's exception) with its message, its fields and, for
``StorageFailed``, the ``OSError`` fields, and it is shown as a member of ``eventpak.errors``."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import eventpak as ep
import pytest


def _sample(annotation: str) -> Any:
    if "Mapping" in annotation:
        return {"limit": 100}
    if "int" in annotation:
        return 5
    return "sample"


def _instance(cls: type[ep.EventpakError]) -> ep.EventpakError:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    args = [_sample(str(p.annotation)) for p in params if p.default is inspect.Parameter.empty]
    return cls(*args)


ERRORS = [getattr(ep.errors, name) for name in ep.errors.__all__]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_fields(cls: type[ep.EventpakError]) -> None:
    error = _instance(cls)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(error, protocol))
        assert type(again) is cls
        assert str(again) == str(error)
        assert again.args == error.args
        assert vars(again) == vars(error)
        if isinstance(error, OSError):
            assert (again.errno, again.strerror, again.filename) == (
                error.errno,
                error.strerror,
                error.filename,
            )


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_is_shown_as_a_member_of_eventpak_errors(cls: type[ep.EventpakError]) -> None:
    assert cls.__module__ == "eventpak.errors"
    assert issubclass(cls, ep.EventpakError)


def test_storage_failed_keeps_the_operating_system_error() -> None:
    error = pickle.loads(
        pickle.dumps(ep.StorageFailed("writing frames", 28, "No space left on device", "/data"))
    )
    assert isinstance(error, OSError)
    assert (error.errno, error.strerror, error.filename) == (28, "No space left on device", "/data")
    assert (error.context, error.path) == ("writing frames", "/data")
