"""Proxy URLs and headers: any input is a Proxy or a ConfigurationError, and credentials never show."""

from __future__ import annotations

from hypothesis import given, strategies as st

import rtsync
from rtsync.wire.network import Network, Proxy

_secret = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=6, max_size=20).filter(str.isalnum)


@given(st.text(max_size=80))
def test_any_proxy_string_is_a_proxy_or_a_configuration_error(text: str) -> None:
    try:
        proxy = Proxy(text)
    except rtsync.ConfigurationError:
        return
    assert proxy.scheme in ("http", "https", "socks5", "socks5h") and proxy.host and 0 < proxy.port < 65536


@given(st.sampled_from(["http", "socks5", "socks5h", "ftp", "https", "socks4"]), _secret, _secret,
       st.sampled_from(["proxy.example", "10.0.0.1", "[::1]", ""]), st.sampled_from(["", ":3128", ":x", ":99999"]))
def test_proxy_credentials_never_show(scheme: str, user: str, password: str, host: str, port: str) -> None:
    url = f"{scheme}://{user}:{password}@{host}{port}"
    try:
        proxy = Proxy(url)
    except rtsync.ConfigurationError as exc:
        assert password not in str(exc) and user not in str(exc)
        return
    for text in (repr(proxy), str(proxy), proxy.shown):
        assert password not in text and user not in text
    assert set(proxy.secrets) == {user, password}


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4))
def test_any_headers_are_accepted_or_a_configuration_error(headers: dict) -> None:
    try:
        network = Network(headers=headers)
    except rtsync.ConfigurationError:
        return
    merged = network.merge_headers({"Authorization": "Bearer vendor"})
    assert merged["Authorization"] == "Bearer vendor"
    assert all("\n" not in v and "\r" not in v for v in merged.values())
