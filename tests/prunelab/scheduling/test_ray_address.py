"""A Ray address: its format (HOST:PORT or ray://HOST:PORT, nothing else), and the app's path (`connect`), which
joins a cluster at an address only when the server's operator allowed it. Nothing here starts or imports Ray."""

from __future__ import annotations

import pytest

from prunelab.scheduling.ray_backend import ALLOW_ADDRESS_ENV, RayBackendError, connect, parse_address


@pytest.mark.parametrize(("address", "parsed"), [
    ("10.0.0.5:6379", ("10.0.0.5", 6379)), ("ray://head-1.cluster.local:10001", ("head-1.cluster.local", 10001)),
    ("[::1]:6379", ("::1", 6379)), ("head_node:1", ("head_node", 1)),
])
def test_host_port_addresses_are_read(address: str, parsed: tuple[str, int]) -> None:
    assert parse_address(address) == parsed


@pytest.mark.parametrize("address", ["head-node", "head node:6379", "head:6379\n", "head:6379\x1b[2J", "\u202ehead:1",
                                     "head:0", "head:65536", "http://head:6379", "-head:1", ":6379", "a:b:6379"])
def test_anything_else_is_refused_in_one_line(address: str) -> None:
    with pytest.raises(RayBackendError) as refused:
        parse_address(address)
    assert str(refused.value).startswith(f"Ray address {address!r} is not HOST:PORT")
    assert "\n" not in str(refused.value) and "\x1b" not in str(refused.value)


def test_the_app_path_refuses_an_address_unless_the_operator_allows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_ADDRESS_ENV, raising=False)
    for address in ("127.0.0.1:6379", "auto", "ray://127.0.0.1:10001"):
        with pytest.raises(RayBackendError, match=f"turns it on by starting the app with {ALLOW_ADDRESS_ENV}=1"):
            connect(address)
    monkeypatch.setenv(ALLOW_ADDRESS_ENV, "1")
    with pytest.raises(RayBackendError, match="is not HOST:PORT"):  # allowed, then checked
        connect("127.0.0.1 :6379")
