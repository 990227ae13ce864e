"""Checks of the arguments the publisher and the replica share, made before anything connects
or is written, so that each refusal is an ``ep.InvalidConfig`` naming the argument given
(nats-py would spin on an empty server list, and retry a bad name or URL for ever)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..errors import InvalidConfig

__all__ = ["check_servers", "check_stream_name", "check_subject", "shown"]

SCHEMES = ("nats", "tls", "ws", "wss")
EXAMPLE = "['nats://127.0.0.1:4222']"


def shown(url: str) -> str:
    """``url`` without the password or token it may carry (``nats://user:***@host``,
    ``nats://***@host``). The user part ends at the authority's last ``@``, as urllib (and so
    nats-py) splits it: a password may hold ``@`` itself."""

    def hide(found: re.Match[str]) -> str:
        user, colon, _ = found[2].partition(":")
        return f"{found[1]}{user}:***@" if colon else f"{found[1]}***@"

    # From `//`, or from the start of a URL given without its scheme (`user:pw@host:port`).
    return re.sub(r"(^|//)([^/?#]*)@", hide, url, count=1)


def check_servers(servers: object) -> list[str]:
    """``servers`` as a list, once it is a non-empty list (or tuple) of NATS URLs:
    ``nats://host:port`` (or ``tls``, ``ws``, ``wss``; ``host:port`` means ``nats://``), not
    mixing websocket and plain ones, as nats-py takes them."""
    if isinstance(servers, str) or not isinstance(servers, (list, tuple)):
        raise InvalidConfig(f"servers must be a list of NATS URLs such as {EXAMPLE}, not {servers!r}")
    if not servers:
        raise InvalidConfig(f"servers must name at least one NATS URL, such as {EXAMPLE}")
    schemes = set()
    for url in servers:
        if not isinstance(url, str):
            raise InvalidConfig(f"servers must be NATS URLs (str), not {url!r}")
        try:
            parts = urlsplit(url if "://" in url else f"nats://{url}")
            parts.port  # noqa: B018 (raises ValueError for a port out of range)
        except ValueError as exc:
            raise InvalidConfig(f"servers: {shown(url)!r} is not a NATS URL: {exc}") from None
        # nats-py looks for its schemes in lower case: `NATS://h` would be read as host "NATS".
        scheme_given = url.split("://", 1)[0] if "://" in url else "nats"
        if (
            scheme_given != parts.scheme
            or parts.scheme not in SCHEMES
            or not parts.hostname
            or parts.port == 0
        ):
            raise InvalidConfig(
                f"servers: {shown(url)!r} is not a NATS URL (nats://host:port; tls, ws or wss also do)"
            )
        schemes.add(parts.scheme in ("ws", "wss"))
    if len(schemes) > 1:
        raise InvalidConfig("servers mix websocket (ws, wss) and plain NATS URLs, which nats-py refuses")
    return list(servers)


def check_stream_name(stream: object) -> None:
    """Raises ``ep.InvalidConfig`` unless ``stream`` is a name JetStream takes for a stream:
    not empty, and no ``.``, ``*``, ``>``, path separator, whitespace or unprintable
    character."""
    if not isinstance(stream, str) or not stream:
        raise InvalidConfig(f"stream must be a non-empty str (a JetStream stream name), not {stream!r}")
    if len(stream.encode("utf-8", "surrogatepass")) > 255:
        raise InvalidConfig(f"stream {stream[:40]!r}... is not a JetStream stream name: it is over 255 bytes")
    bad = sorted({ch for ch in stream if ch in ".*>/\\" or ch.isspace() or not ch.isprintable()})
    if bad:
        raise InvalidConfig(
            f"stream {stream!r} is not a JetStream stream name: it holds {', '.join(map(repr, bad))} "
            "(no '.', '*', '>', path separators, whitespace or unprintable characters)"
        )


def check_subject(subject: object) -> None:
    """Raises ``ep.InvalidConfig`` unless ``subject`` is a subject a message can be published
    to: dot-separated tokens, none empty or a wildcard (``*``, ``>``), with no whitespace or
    unprintable character."""
    if not isinstance(subject, str) or not subject:
        raise InvalidConfig(f"subject must be a non-empty str (a NATS subject), not {subject!r}")
    bad = sorted({ch for ch in subject if ch.isspace() or not ch.isprintable()})
    tokens = subject.split(".")
    if bad or any(token in ("", "*", ">") for token in tokens):
        raise InvalidConfig(
            f"subject {subject!r} cannot be published to: a NATS subject is tokens split by '.', "
            "none empty or a wildcard ('*', '>'), with no whitespace"
        )
