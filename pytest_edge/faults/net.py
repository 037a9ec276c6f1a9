"""Network faults: connection refused, timeout, reset, DNS failure, for given hosts and ports.

Patched at the socket layer, so ``socket.create_connection``, ``http.client``, ``urllib``,
``asyncio`` streams and most client libraries built on them are covered: ``refused`` and
``timeout`` fail ``connect``/``connect_ex`` at once (no real wait), ``reset`` lets the connection
open and fails the first ``send``/``recv`` on it, ``dns`` fails ``getaddrinfo`` and
``gethostbyname`` for the host. TLS data calls go through the ``ssl`` module's C code: ``reset``
does not reach them (``refused``/``timeout``/``dns`` do).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from pytest_edge.faults.events import EventSink
from pytest_edge.faults.patching import Attachment, attach

_getaddrinfo = socket.getaddrinfo


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class NetworkFault:
    """One armed network fault (state-like: holds until disarmed)."""

    def __init__(self, error: str, host: str | None, port: int | None, log: EventSink) -> None:
        self.error = error
        self.host = host
        self.port = port
        self.log = log
        self.hosts: set[str] = set()
        self.calls = 0
        self._attachments: list[Attachment] = []

    @property
    def attachments(self) -> list[Attachment]:
        return self._attachments

    def target(self) -> str:
        return f"{self.host or '*'}:{self.port or '*'}"

    def arm(self) -> None:
        if self.host is not None:
            self.hosts.add(self.host.lower())
            if self.error != "dns" and not _is_ip(self.host):
                try:  # also match the addresses the name resolves to, as connect sees those
                    for info in _getaddrinfo(self.host, None):
                        self.hosts.add(str(info[4][0]).lower())
                except OSError:
                    pass
        if self.error == "dns":
            for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
                self._attachments.append(attach(socket, name, self._dns_hook))
        elif self.error == "reset":
            for name in ("send", "sendall", "recv", "recv_into", "sendto", "recvfrom"):
                self._attachments.append(attach(socket.socket, name, self._data_hook))
        else:
            for name in ("connect", "connect_ex"):
                self._attachments.append(attach(socket.socket, name, self._connect_hook(name)))

    def _matches(self, host: object, port: object) -> bool:
        if self.host is not None and str(host).lower() not in self.hosts:
            return False
        if self.port is None or port is None:
            return True
        try:
            return int(port) == self.port  # type: ignore[call-overload, no-any-return]
        except (TypeError, ValueError):
            return False

    def _record(self, where: str, error: BaseException) -> BaseException:
        self.calls += 1
        self.log.record(
            "network", self.target(), self.calls, where, f"{self.error}: raised {error!r}"
        )
        error.add_note(f"injected by pytest-edge: network({self.error!r}, {self.target()})")
        return error

    def _connect_hook(self, name: str) -> Callable[..., Any]:
        def hook(proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            address = args[1] if len(args) > 1 else kwargs.get("address")
            if (
                isinstance(address, tuple)
                and len(address) >= 2
                and self._matches(address[0], address[1])
            ):
                code = errno.ECONNREFUSED if self.error == "refused" else errno.ETIMEDOUT
                error: OSError = (
                    ConnectionRefusedError(code, "Connection refused")
                    if self.error == "refused"
                    else TimeoutError(code, "timed out")
                )
                self._record(f"{name}({address[0]}:{address[1]})", error)
                if name == "connect_ex":
                    return code
                raise error
            return proceed(*args, **kwargs)

        return hook

    def _data_hook(
        self, proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        sock = args[0] if args else None
        if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                peer = sock.getpeername()
            except OSError:
                peer = None
            if peer is not None and self._matches(peer[0], peer[1]):
                error = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
                raise self._record(f"{peer[0]}:{peer[1]}", error)
        return proceed(*args, **kwargs)

    def _dns_hook(
        self, proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        host = args[0] if args else kwargs.get("host", kwargs.get("hostname"))
        port = args[1] if len(args) > 1 else kwargs.get("port")
        if isinstance(host, bytes):
            host = host.decode("idna", errors="replace")
        if host is not None and self._matches(host, port):
            error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            raise self._record(f"resolve {host}", error)
        return proceed(*args, **kwargs)
