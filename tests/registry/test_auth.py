import hashlib
import re

import pytest

from conform_core.exceptions import ConformError, ParameterError
from conform_registry._auth import (
    TOKEN_PREFIX,
    AuthenticationError,
    AuthorizationError,
    Principal,
    Role,
    check_role,
    check_token,
    hash_token,
    new_token,
    parse_bearer,
    token_matches,
    token_prefix,
)


def test_new_tokens_are_prefixed_random_and_well_formed():
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"cfr_[A-Za-z0-9_-]{43}", token)  # 43 base64url chars = 256 bits
        assert check_token(token) == token


def test_hash_is_the_sha256_hex_of_the_token():
    token = new_token()
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert hash_token(token) == hash_token(token) != hash_token(new_token())
    assert token_matches(token, hash_token(token))
    assert not token_matches(new_token(), hash_token(token))
    assert token_prefix(token) == token[:8] and token_prefix(token).startswith(TOKEN_PREFIX)


def test_check_token_strips_a_trailing_newline():
    token = new_token()
    assert check_token(f"  {token}\n") == token


@pytest.mark.parametrize(("value", "words"), [
    (None, "No registry token"), ("", "No registry token"), ("   ", "No registry token"),
    ("ghp_" + "a" * 43, "does not start with 'cfr_'"),
    ("cfr_short", "has 9 characters instead of 47"),
    ("cfr_" + "a" * 42 + "!", "malformed"),
])
def test_malformed_tokens_are_refused_without_echoing_them(value, words):
    with pytest.raises(AuthenticationError, match=words) as info:
        check_token(value)
    message = str(info.value)
    assert "CONFORM_REGISTRY_TOKEN" in message
    if value and value.strip():
        assert value.strip() not in message
    assert isinstance(info.value, PermissionError) and isinstance(info.value, ConformError)


def test_bearer_headers_are_parsed():
    token = new_token()
    assert parse_bearer(f"Bearer {token}") == token
    assert parse_bearer(f"bearer  {token} ") == token
    with pytest.raises(AuthenticationError, match="no 'Authorization: Bearer"):
        parse_bearer(None)
    with pytest.raises(AuthenticationError, match="'Basic' scheme"):
        parse_bearer("Basic dXNlcjpwdw==")
    with pytest.raises(AuthenticationError, match="malformed"):
        parse_bearer("Bearer cfr_x")


def test_roles_are_checked_with_a_suggestion():
    assert check_role("curator") is Role.CURATOR
    assert check_role(Role.CONTRIBUTOR) is Role.CONTRIBUTOR
    assert str(Role.CURATOR) == "curator" and Role.CURATOR == "curator"
    with pytest.raises(ParameterError, match="'contributor' or 'curator'.*Did you mean 'curator'"):
        check_role("curater")
    with pytest.raises(ParameterError, match="role"):
        check_role("admin")


def test_a_curator_includes_a_contributor():
    assert Role.CURATOR.includes("contributor") and Role.CURATOR.includes(Role.CURATOR)
    assert not Role.CONTRIBUTOR.includes(Role.CURATOR)


def test_principal_requires_role_and_site():
    contributor = Principal(token_id=1, site="cam", role="contributor")
    curator = Principal(token_id=2, site="central", role=Role.CURATOR)
    assert contributor.role is Role.CONTRIBUTOR and not contributor.is_curator and curator.is_curator

    contributor.require("contributor", site="cam")
    curator.require("contributor", site="cam")  # curators act on every site
    curator.require(Role.CURATOR)
    with pytest.raises(AuthorizationError, match="Only a curator may publish 'x'.*site 'cam'"):
        contributor.require("curator", action="publish 'x'")
    with pytest.raises(AuthorizationError, match="Site 'cam' may not upload.*belongs to site 'ucl'") as info:
        contributor.require("contributor", site="ucl", action="upload")
    assert isinstance(info.value, PermissionError)
    with pytest.raises(ParameterError):
        Principal(token_id=3, site="cam", role="owner")
