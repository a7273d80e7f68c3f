"""Webhook URLs may only reach the public internet.

Whoever may subscribe a webhook could otherwise make the server POST to addresses
only it can reach: the database, Redis, a cloud metadata endpoint. Two checks:

- on subscribing, a URL whose host is, or resolves to, a private, loopback,
  link-local, multicast or reserved address is refused with an error naming it;
- on delivering, the address actually connected to is checked before anything is
  sent, so a name that resolves elsewhere later (DNS rebinding) or a redirect to
  an internal host is refused too. Through a proxy (HTTP_PROXY, HTTPS_PROXY),
  which is usually on a private address itself, the target's own addresses are
  checked instead, before the proxy is asked for anything.

`LOYALIST_WEBHOOK_ALLOW_PRIVATE = True` lifts both, for development and tests with
a receiver on this machine.
"""

import http.client
import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings


class PrivateAddressError(OSError):
    """The webhook's host is not on the public internet."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _allowed() -> bool:
    return bool(getattr(settings, "LOYALIST_WEBHOOK_ALLOW_PRIVATE", False))


def private_address_of(url: str) -> str | None:
    """A non-public address the URL's host is or resolves to, else None.

    A host that does not resolve now is not refused: delivery checks again.
    """
    if _allowed():
        return None
    host = urlsplit(url).hostname or ""
    try:
        addresses = {
            info[4][0]
            for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        }
    except (OSError, UnicodeError):
        return None
    return next((a for a in sorted(addresses) if not is_public(a)), None)


def _peer_check(connection: http.client.HTTPConnection) -> None:
    if _allowed():
        return
    address = connection.sock.getpeername()[0]
    if not is_public(address):
        connection.sock.close()
        raise PrivateAddressError(
            f"refused: {connection.host} is at {address}, not a public address"
        )


def _target_check(host: str) -> None:
    """Through a proxy the address connected to is the proxy's: check every address
    the target's name resolves to instead, before anything is sent.

    A name that does not resolve here is refused too: only the proxy could tell
    where it goes.
    """
    if _allowed():
        return
    try:
        addresses = {
            info[4][0]
            for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        }
    except (OSError, UnicodeError):
        raise PrivateAddressError(f"refused: {host} does not resolve") from None
    private = sorted(a for a in addresses if not is_public(a))
    if private:
        raise PrivateAddressError(
            f"refused: {host} is at {private[0]}, not a public address"
        )


class _PublicHTTPConnection(http.client.HTTPConnection):
    # Set for a request sent through a proxy, whose target was checked already.
    proxied = False

    def connect(self):
        super().connect()
        if not self.proxied:
            _peer_check(self)


class _ProxiedHTTPConnection(_PublicHTTPConnection):
    proxied = True


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        # The TCP connection first, checked, then TLS on it: nothing, not even a
        # TLS hello, goes to a private address. Through a proxy (a CONNECT
        # tunnel), the target's own addresses are checked before connecting.
        if self._tunnel_host:
            _target_check(self._tunnel_host)
            http.client.HTTPConnection.connect(self)
        else:
            http.client.HTTPConnection.connect(self)
            _peer_check(self)
        self.sock = self._context.wrap_socket(
            self.sock, server_hostname=self._tunnel_host or self.host
        )


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        if req.has_proxy():
            _target_check(urlsplit(req.full_url).hostname or "")
            return self.do_open(_ProxiedHTTPConnection, req)
        return self.do_open(_PublicHTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)


def opener() -> urllib.request.OpenerDirector:
    """An opener with the checks above, and the proxies the environment names now
    (HTTP_PROXY, HTTPS_PROXY, NO_PROXY). Redirects are followed through the same
    handlers, so they are checked as well."""
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)
