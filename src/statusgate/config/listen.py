"""Whether a listener's HOST:PORT can be bound here, and, when it cannot, one line
saying why and what to do (``serve`` fails with it; ``check-config`` reports it)."""

from __future__ import annotations

import errno
import socket

from statusgate.config.gateway import split_host_port


def check_bindable(what: str, address: str, flag: str) -> None:
    """Raise OSError (its message the one line) when HOST:PORT cannot be listened on:
    the port is in use, or the host is not an address of this machine. ``what`` names
    the listener (``HTTP``), ``flag`` the option that sets it (``--http``)."""
    host, port = split_host_port(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise OSError(
            f"cannot listen for {what} on {address}: {host!r} does not resolve "
            f"({error.strerror}); use an address of this machine ({flag})"
        ) from None
    failures: list[OSError] = []
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            # As a listener does: a port left in TIME_WAIT is free to take.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise OSError(error.errno, bind_failure(what, address, error, flag)) from None
                failures.append(error)
    # "localhost" may resolve to an IPv6 address this machine lacks: one that binds is
    # enough, as for the listener itself.
    if failures and len(failures) == len(infos):
        first = failures[0]
        raise OSError(first.errno, bind_failure(what, address, first, flag))


def bind_failure(what: str, address: str, error: OSError, flag: str) -> str:
    """One line: why ``address`` cannot be listened on, and what to do."""
    where = f"cannot listen for {what} on {address}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"{where}: the address is in use (by another gateway or program); stop that "
            f"one, or choose another port ({flag})"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{where}: it is not an address of this machine; choose one that is ({flag})"
    if error.errno == errno.EACCES:
        return (
            f"{where}: permission denied (ports below 1024 need privileges); choose a port "
            f"above 1023 ({flag})"
        )
    return f"{where}: {error.strerror or error} ({flag})"
