"""The root of every eventpak error (see :mod:`eventpak.errors`)."""

from __future__ import annotations

from typing import Any

__all__ = ["EventpakError"]


class EventpakError(Exception):
    """Base of every eventpak error."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors take their fields as arguments but pass a finished message to Exception, so
        # the default reduction (call the class with ``args``) cannot rebuild them. They are
        # rebuilt from ``args`` and their attributes instead, so they cross process
        # boundaries (multiprocessing, concurrent.futures) with every field.
        # An OSError keeps errno, strerror and filename outside ``args`` and ``__dict__``.
        os_fields = (self.errno, self.strerror, self.filename) if isinstance(self, OSError) else None
        return (_rebuild, (type(self), self.args, dict(self.__dict__), os_fields))


def _rebuild(
    cls: type[EventpakError], args: tuple[Any, ...], state: dict[str, Any], os_fields: tuple[Any, ...] | None
) -> EventpakError:
    error = cls.__new__(cls, *args)
    if os_fields is not None:
        OSError.__init__(error, *os_fields)
    else:
        BaseException.__init__(error, *args)
    error.__dict__.update(state)
    return error


# Shown and pickled as a member of eventpak.errors, where users import it from.
EventpakError.__module__ = "eventpak.errors"
