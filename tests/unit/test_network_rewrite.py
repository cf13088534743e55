"""The request rewriter: placeholders become values for their own hosts only, whatever the reads' split."""

from __future__ import annotations

import pytest

from roost.errors import InvalidArgument, NetworkError
from roost.network.rewrite import MAX_HEAD, RequestRewriter
from roost.network.substitution import Substitution, substitutions_from_wire, substitutions_to_wire

API = Substitution("API_TOKEN", "roost-secret-aaaa1111", b"real-token-1", ("api.example.com",))
OTHER = Substitution("OTHER", "roost-secret-bbbb2222", b"other-value", ("*.other.test",), in_body=True)


def rewriter(
    substitutions: tuple[Substitution, ...] = (API, OTHER), identity: str | None = "api.example.com"
) -> tuple[RequestRewriter, list[tuple[str, str | None]]]:
    foreign: list[tuple[str, str | None]] = []
    made = RequestRewriter(substitutions, lambda _host: identity, lambda item, host: foreign.append((item.name, host)))
    return made, foreign


def request(host: str, *headers: str, body: bytes = b"", method: str = "GET") -> bytes:
    lines = [f"{method} /v1 HTTP/1.1", f"Host: {host}", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def feed_bytewise(made: RequestRewriter, data: bytes) -> bytes:
    return b"".join(made.feed(data[index : index + 1]) for index in range(len(data)))


def test_a_placeholder_in_a_header_becomes_the_value_for_its_host() -> None:
    made, foreign = rewriter()
    sent = made.feed(request("api.example.com", "Authorization: Bearer roost-secret-aaaa1111"))
    assert b"Authorization: Bearer real-token-1\r\n" in sent
    assert b"roost-secret" not in sent and foreign == []


def test_a_request_split_into_single_bytes_is_rewritten_the_same() -> None:
    whole = request("api.example.com", "Authorization: Bearer roost-secret-aaaa1111", body=b"x=1")
    made, _ = rewriter()
    assert feed_bytewise(made, whole) == rewriter()[0].feed(whole)
    assert b"real-token-1" in rewriter()[0].feed(whole)


def test_every_request_on_a_kept_alive_connection_is_rewritten() -> None:
    made, _ = rewriter()
    first = request("api.example.com", "X-Key: roost-secret-aaaa1111", body=b"roost-secret-aaaa1111")
    second = request("api.example.com", "X-Key: roost-secret-aaaa1111")
    sent = made.feed(first + second)
    assert sent.count(b"X-Key: real-token-1") == 2
    # The body is not the header's business: API_TOKEN is header-only, so its placeholder stays there.
    assert sent.count(b"roost-secret-aaaa1111") == 1


def test_a_placeholder_for_another_host_goes_out_unchanged_and_is_reported_once_per_request() -> None:
    made, foreign = rewriter(identity="evil.test")
    headers = ("Authorization: Bearer roost-secret-aaaa1111", "X-Again: roost-secret-aaaa1111")
    sent = made.feed(request("evil.test", *headers) + request("evil.test", *headers))
    assert sent.count(b"roost-secret-aaaa1111") == 4 and b"real-token-1" not in sent
    assert foreign == [("API_TOKEN", "evil.test"), ("API_TOKEN", "evil.test")]


def test_an_unverified_host_gets_no_value_even_when_its_name_matches() -> None:
    made, foreign = rewriter(identity=None)
    sent = made.feed(request("api.example.com", "Authorization: roost-secret-aaaa1111"))
    assert b"real-token-1" not in sent
    assert foreign == [("API_TOKEN", "api.example.com")]


def test_in_body_rewrites_the_body_and_fixes_its_content_length() -> None:
    made, _ = rewriter(identity="a.other.test")
    body = b'{"key": "roost-secret-bbbb2222"}'
    sent = feed_bytewise(made, request("a.other.test", body=body) + request("a.other.test"))
    expected_body = b'{"key": "other-value"}'
    assert f"Content-Length: {len(expected_body)}\r\n".encode() in sent
    _, _, rest = sent.partition(b"\r\n\r\n")
    assert rest.startswith(expected_body + b"GET /v1 HTTP/1.1")


def test_a_body_waits_until_whole_before_anything_of_its_request_leaves() -> None:
    made, _ = rewriter(identity="a.other.test")
    whole = request("a.other.test", body=b"0123456789roost-secret-bbbb2222")
    assert made.feed(whole[:-5]) == b""
    assert made.feed(whole[-5:]).endswith(b"0123456789other-value")


def test_chunked_bodies_pass_untouched_and_the_next_request_is_still_rewritten() -> None:
    made, _ = rewriter(identity="a.other.test")
    chunked = (
        b"POST /up HTTP/1.1\r\nHost: a.other.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"15\r\nroost-secret-bbbb2222\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    follow = request("a.other.test", "X-Key: roost-secret-bbbb2222")
    sent = feed_bytewise(made, chunked + follow)
    assert sent.startswith(chunked)
    assert sent[len(chunked) :] == follow.replace(b"roost-secret-bbbb2222", b"other-value")


def test_after_an_upgrade_the_bytes_are_not_http_and_pass_as_they_are() -> None:
    made, _ = rewriter()
    upgrade = request("api.example.com", "Upgrade: websocket", "Connection: Upgrade")
    frames = b"\x81\x05roost-secret-aaaa1111 GET / HTTP/1.1\r\nX: roost-secret-aaaa1111\r\n\r\n"
    assert made.feed(upgrade + frames) == upgrade + frames


def test_a_head_past_its_bound_passes_unread() -> None:
    made, _ = rewriter()
    huge = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * MAX_HEAD + b"roost-secret-aaaa1111\r\n\r\n"
    assert made.feed(huge) == huge


def test_a_bad_chunk_size_turns_the_rest_into_raw_bytes_without_raising() -> None:
    made, _ = rewriter()
    bad = b"POST / HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nroost-secret-aaaa1111"
    assert made.feed(bad) == bad


def test_substitutions_cross_the_control_socket_whole_and_their_repr_holds_no_value() -> None:
    assert substitutions_from_wire(substitutions_to_wire([API, OTHER])) == (API, OTHER)
    assert "real-token-1" not in repr(API)


def test_a_substitution_needs_a_usable_placeholder_and_a_host() -> None:
    with pytest.raises(InvalidArgument):
        Substitution("A", "short", b"v", ("api.example.com",))
    with pytest.raises(InvalidArgument):
        Substitution("A", "roost-secret-cccc", b"v", ())
    with pytest.raises(NetworkError) as raised:
        substitutions_from_wire([{"name": "A", "placeholder": "roost-secret-x", "value": "!!notbase64", "hosts": []}])
    assert "notbase64" not in str(raised.value)


def test_wildcard_hosts_match_subdomains_only() -> None:
    assert OTHER.goes_to("a.other.test") and not OTHER.goes_to("other.test") and not OTHER.goes_to(None)
