"""Arguments of eventpak.nats.Publisher and Replica that NATS could not use are refused with
ep.InvalidConfig at construction, before anything connects or is written (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.nats
import pytest

BAD_SERVERS = [
    pytest.param([], id="empty"),
    pytest.param(None, id="none"),
    pytest.param("nats://127.0.0.1:4222", id="a-bare-string"),
    pytest.param([""], id="empty-url"),
    pytest.param(["nats://127.0.0.1:99999"], id="port-out-of-range"),
    pytest.param(["NATS://127.0.0.1:4222"], id="scheme-in-capitals"),
    pytest.param(["nats://127.0.0.1:0"], id="port-zero"),
    pytest.param([4222], id="not-a-str"),
    pytest.param(["http://127.0.0.1:4222"], id="not-nats"),
    pytest.param(["nats://:4222"], id="no-host"),
    pytest.param(["ws://127.0.0.1:8080", "nats://127.0.0.1:4222"], id="websocket-and-plain"),
]


@pytest.mark.parametrize("servers", BAD_SERVERS)
def test_servers_nats_cannot_use_are_refused_by_the_publisher(tmp_path: Path, servers: Any) -> None:
    with ep.Store.open(tmp_path / "origin") as store:
        store.append(("a", "s"), "k", 1)
        with pytest.raises(ep.InvalidConfig, match="servers"):
            ep.nats.Publisher(store, ep.Region.all(), servers=servers)
        assert store.checkpoints() == []  # no worker was started
        assert [e.payload for e in store.query(ep.Region.all())] == [1]


@pytest.mark.parametrize("servers", BAD_SERVERS)
def test_servers_nats_cannot_use_are_refused_by_the_replica(tmp_path: Path, servers: Any) -> None:
    with pytest.raises(ep.InvalidConfig, match="servers"):
        ep.nats.Replica(tmp_path / "r", servers=servers)
    assert not (tmp_path / "r").exists()


def test_a_refused_server_url_does_not_show_its_password(tmp_path: Path) -> None:
    for url in (
        "nats://user:s3cret@127.0.0.1:99999",
        "nats://s3cret@127.0.0.1:99999",
        "nats://user:s3c@ret@127.0.0.1:99999",  # an '@' in the password: urllib splits at the last
    ):
        with pytest.raises(ep.InvalidConfig, match=r"127\.0\.0\.1:99999") as refused:
            ep.nats.Replica(tmp_path / "r", servers=[url])
        assert "s3c" not in str(refused.value) and "ret@" not in str(refused.value)


BAD_STREAMS = [
    "",
    "S" * 256,
    "é" * 128,
    "ORDERS.v1",
    "ORDERS*",
    "ORDERS>",
    "MY ORDERS",
    "a/b",
    "a\\b",
    "tab\there",
    None,
    5,
]


@pytest.mark.parametrize("stream", BAD_STREAMS)
def test_a_stream_name_jetstream_refuses_is_refused_by_the_publisher(tmp_path: Path, stream: Any) -> None:
    with ep.Store.open(tmp_path / "origin") as store:
        store.append(("a", "s"), "k", 1)
        with pytest.raises(ep.InvalidConfig, match="stream"):
            ep.nats.Publisher(store, ep.Region.all(), servers=["nats://127.0.0.1:1"], stream=stream)
        assert store.checkpoints() == []


@pytest.mark.parametrize("stream", BAD_STREAMS)
def test_a_stream_name_jetstream_refuses_is_refused_by_the_replica(tmp_path: Path, stream: Any) -> None:
    # Before the data dir is marked a replica of that name, for good.
    with pytest.raises(ep.InvalidConfig, match="stream"):
        ep.nats.Replica(tmp_path / "r", servers=["nats://127.0.0.1:1"], stream=stream)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "subject", ["", "ORDERS.*", "ORDERS.>", "ORDERS..events", ".ORDERS", "ORDERS.", "a b", b"ORDERS", 7]
)
def test_a_subject_nothing_can_be_published_to_is_refused(tmp_path: Path, subject: Any) -> None:
    # nats-py sent such a subject and the server never answered it: retried for ever.
    with ep.Store.open(tmp_path / "origin") as store:
        store.append(("a", "s"), "k", 1)
        with pytest.raises(ep.InvalidConfig, match="subject"):
            ep.nats.Publisher(store, ep.Region.all(), servers=["nats://127.0.0.1:1"], subject=subject)
        assert store.checkpoints() == []
        assert not (tmp_path / "origin" / "nats").exists()
