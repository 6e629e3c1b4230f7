"""API tokens, roles and the authenticated caller.

A token is ``"cfr_"`` followed by 32 random bytes in URL-safe base64 (43 characters). The
server stores only its sha256 (:func:`hash_token`) and the first 8 characters
(:func:`token_prefix`) so that listings can tell tokens apart. Clients read the token from
``$CONFORM_REGISTRY_TOKEN`` first (no keyring required).

Roles: a ``contributor`` uploads to its own site's datasets; a ``curator`` may also act on
every site's datasets and manage sites and tokens. A curator can do everything a
contributor can (:meth:`Principal.require`).
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import Enum

from conform_core.exceptions import ConformError, ParameterError

__all__ = [
    "TOKEN_ENV", "TOKEN_PREFIX", "AuthError", "AuthenticationError", "AuthorizationError",
    "Principal", "Role", "check_role", "check_token", "hash_token", "new_token",
    "parse_bearer", "token_matches", "token_prefix",
]

TOKEN_PREFIX = "cfr_"
"""Every registry token starts with this (secret scanners can recognise it)."""
TOKEN_ENV = "CONFORM_REGISTRY_TOKEN"
"""The environment variable clients read their token from."""
_TOKEN = re.compile(r"^cfr_[A-Za-z0-9_-]{43}$")


class Role(str, Enum):
    """What a token may do: ``contributor`` < ``curator``."""

    CONTRIBUTOR = "contributor"
    CURATOR = "curator"

    def __str__(self) -> str:
        return self.value

    def includes(self, other: Role | str) -> bool:
        """Return whether this role may do what ``other`` may (a curator includes a contributor)."""
        order = list(Role)
        return order.index(self) >= order.index(check_role(other))


class AuthError(ConformError, PermissionError):
    """A request is not allowed (root of the two cases below)."""


class AuthenticationError(AuthError):
    """No token, a malformed token, or an unknown or revoked one (HTTP 401)."""


class AuthorizationError(AuthError):
    """A valid token whose role or site does not allow the action (HTTP 403)."""


def new_token() -> str:
    """Return a new random API token (``"cfr_"`` and 256 random bits).

    Returns
    -------
    str
        The token; show it once and store only :func:`hash_token` of it.
    """
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the sha256 (hex) under which a token is stored.

    A plain, fast hash is the right choice here, unlike for passwords: tokens carry 256
    random bits, so no dictionary or brute-force search can invert the hash, and a slow
    hash (bcrypt, argon2) would only slow down every request. Because the hash is
    deterministic, the server finds a token by an indexed lookup of its hash.

    Parameters
    ----------
    token : str
        The token as the client sends it.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    """Return whether ``token`` hashes to ``token_hash`` (a constant-time comparison)."""
    return hmac.compare_digest(hash_token(token), token_hash)


def token_prefix(token: str) -> str:
    """Return the first 8 characters of a token, stored to tell tokens apart in listings."""
    return token[:8]


def check_token(token: object) -> str:
    """Return ``token`` if it has the form of a registry token.

    Surrounding whitespace (a newline from a file) is removed.

    Parameters
    ----------
    token : str
        The token.

    Returns
    -------
    str
        The token, stripped.

    Raises
    ------
    AuthenticationError
        If it is missing or malformed (the message never repeats the token).
    """
    if not isinstance(token, str) or not token.strip():
        raise AuthenticationError(f"No registry token was given. Set ${TOKEN_ENV} to the token "
                                  "your registry curator issued (it starts with 'cfr_').")
    token = token.strip()
    if not _TOKEN.match(token):
        what = ("does not start with 'cfr_'" if not token.startswith(TOKEN_PREFIX)
                else f"has {len(token)} characters instead of {len(TOKEN_PREFIX) + 43}")
        raise AuthenticationError(f"The registry token is malformed: it {what}. Copy the whole "
                                  f"token into ${TOKEN_ENV}, or ask a curator for a new one.")
    return token


def parse_bearer(header: str | None) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header value.

    Parameters
    ----------
    header : str or None
        The header's value.

    Returns
    -------
    str
        The token (checked by :func:`check_token`).

    Raises
    ------
    AuthenticationError
        If the header is missing, not of the Bearer scheme, or holds a malformed token.
    """
    if not header or not header.strip():
        raise AuthenticationError("The request has no 'Authorization: Bearer <token>' header. "
                                  f"Set ${TOKEN_ENV}, or pass the token to the client.")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError(f"The Authorization header uses the {scheme[:20]!r} scheme; the "
                                  "registry expects 'Bearer <token>'.")
    return check_token(value)


def check_role(role: object) -> Role:
    """Return the :class:`Role` named ``role``.

    Parameters
    ----------
    role : str or Role
        ``"contributor"`` or ``"curator"``.

    Returns
    -------
    Role
        The role.

    Raises
    ------
    ParameterError
        If ``role`` names no role (the message suggests the closest).
    """
    if isinstance(role, Role):
        return role
    try:
        return Role(role)
    except ValueError:
        names = [r.value for r in Role]
        close = difflib.get_close_matches(str(role), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ParameterError(param="role", value=role, allowed=" or ".join(map(repr, names)),
                             fix=hint.strip()) from None


@dataclass(frozen=True)
class Principal:
    """The caller of a request, as its token identifies it.

    Parameters
    ----------
    token_id : int
        Id of the token row (for the audit log).
    site : str
        Name of the token's site.
    role : Role or str
        The token's role.
    """

    token_id: int
    site: str
    role: Role

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", check_role(self.role))

    @property
    def is_curator(self) -> bool:
        """Whether the caller is a curator."""
        return self.role is Role.CURATOR

    def require(self, role: Role | str, *, site: str | None = None, action: str = "do this") -> None:
        """Check that the caller has ``role`` and, for a contributor, belongs to ``site``.

        Parameters
        ----------
        role : Role or str
            The least role the action needs.
        site : str or None, default=None
            The site that owns the target; a contributor of another site is refused,
            a curator is not.
        action : str, default="do this"
            What is attempted, for the message (e.g. ``"publish dataset 'x'"``).

        Raises
        ------
        AuthorizationError
            If the role or the site does not allow it.
        """
        needed = check_role(role)
        if not self.role.includes(needed):
            raise AuthorizationError(f"Only a {needed} may {action}; this token of site "
                                     f"{self.site!r} is a {self.role}. Ask a curator.")
        if site is not None and site != self.site and not self.is_curator:
            raise AuthorizationError(f"Site {self.site!r} may not {action}: it belongs to site "
                                     f"{site!r}. Use a token of {site!r}, or ask a curator.")
