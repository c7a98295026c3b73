"""Where the dashboard listens and whom it answers: the port (checked once, at the edge), a check
that the address can be bound, and the Host headers it serves.

A browser sends the name it connected to as the Host header. A page on another site whose name
resolves to 127.0.0.1 (DNS rebinding) reaches a loopback server under that other name, so only the
loopback names, the bound address and the names a user allows are served; any other Host gets a 400.
"""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")  # the names a browser on this machine sends
WILDCARDS = ("0.0.0.0", "[::]", "")  # bind addresses no browser sends as a Host
HTTP_PORT = 80  # the port of a Host header that names none
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9_]([a-z0-9._-]*[a-z0-9_])?)(?::([0-9]{1,5}))?")


def _shown(value: object) -> str:
    """A short repr of request or user input for a message (never the whole of a long string)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_port(value: object, argument: str = "port") -> int:
    """A TCP port from 1 to 65535 (an int or decimal digits); ValueError naming `argument` otherwise."""
    port = None
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}", value.strip()):
        port = int(value.strip())
    if port is None or not 1 <= port <= 65535:
        raise ValueError(f"{argument}: must be an integer from 1 to 65535, got {_shown(value)}")
    return port


def bracketed(host: str) -> str:
    """A bind address as a Host header names it: IPv6 addresses in brackets, names in lowercase."""
    host = host.strip().lower()
    return f"[{host}]" if host.count(":") > 1 and not host.startswith("[") else host  # one colon: NAME:PORT


def split_host(text: str) -> tuple[str, int | None] | None:
    """(name, port or None) of a Host header or an allowed entry (NAME or NAME:PORT); None when
    it is neither."""
    m = _HOST.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if m is None:
        return None
    port = int(m[3]) if m[3] else None
    return None if port is not None and not 1 <= port <= 65535 else (m[1], port)


@dataclass(frozen=True)
class HostAllowList:
    """The Host headers a dashboard serves: (name, port) pairs, port None for any port."""

    entries: frozenset[tuple[str, int | None]]

    def allows(self, header: str | None) -> bool:
        split = split_host(header) if header else None
        if split is None:
            return False
        name, port = split
        port = HTTP_PORT if port is None else port
        return (name, port) in self.entries or (name, None) in self.entries


def allow_list(allowed_hosts: Iterable[str] = (), port: int | None = None,
               argument: str = "allowed_hosts") -> HostAllowList:  # fmt: skip
    """The loopback names (on `port`, or any port when None) and each of `allowed_hosts` (NAME, any
    port, or NAME:PORT; an IPv6 address in brackets). ValueError naming `argument` for a bad entry."""
    port = None if port is None else parse_port(port)
    if isinstance(allowed_hosts, str):  # one name, not its characters
        allowed_hosts = [allowed_hosts]
    entries = {(name, port) for name in LOOPBACK}
    for entry in allowed_hosts:
        split = split_host(bracketed(entry)) if isinstance(entry, str) else None
        if split is None or split[0] in WILDCARDS:
            raise ValueError(f"{argument}: {_shown(entry)} is not a host name (NAME or NAME:PORT)")
        entries.add(split)
    return HostAllowList(frozenset(entries))


def served_hosts(bind_host: str, allowed: Iterable[str], port: int) -> list[str]:
    """The CLI's allowed Host entries: the bound address on its port (unless it is a wildcard such
    as 0.0.0.0, which no browser sends) and the names the user allows."""
    bound = bracketed(bind_host)
    return ([] if bound in WILDCARDS or bound in LOOPBACK else [f"{bound}:{port}"]) + list(allowed)


def check_bindable(host: str, port: int) -> None:
    """Bind (and release) `host`:`port` as the server will, so that a name that does not resolve or a
    port in use is a one-line ValueError before the server starts (werkzeug would print its own
    lines and exit). As the server does, SO_REUSEADDR lets a port in TIME_WAIT count as free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        address = socket.getaddrinfo(host.strip("[]"), port, family, socket.SOCK_STREAM)[0][4]
    except (OSError, UnicodeError) as err:
        raise ValueError(f"--host: cannot resolve {_shown(host)}: {getattr(err, 'strerror', None) or err}") from None
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as err:
            why = "in use by another program" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
            raise ValueError(f"--port: cannot listen on {host}:{port}: {why}") from None
