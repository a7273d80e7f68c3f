"""Webhooks through an HTTP(S) proxy: the target is checked, not the proxy."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crm.webhooks.services import _post

PUBLIC = "93.184.216.34"  # a public address written as a number: no DNS lookup


class Proxy:
    """A proxy on this machine (a private address, as proxies usually are) that
    records what it is asked: plain HTTP requests get 200, CONNECT gets 403."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                proxy.requests.append(("POST", self.path))
                self.send_response(200)
                self.end_headers()

            def do_CONNECT(self):
                proxy.requests.append(("CONNECT", self.path))
                self.send_response(403)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(monkeypatch, settings):
    settings.LOYALIST_WEBHOOK_ALLOW_PRIVATE = False
    with Proxy() as proxy:
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.setenv(name, "")
        yield proxy


def test_a_public_target_is_reached_through_a_proxy_on_a_private_address(proxy):
    status, error = _post(f"http://{PUBLIC}/hook", b"{}", {})

    assert (status, error) == (200, "")
    assert proxy.requests == [("POST", f"http://{PUBLIC}/hook")]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_private_target_is_refused_before_the_proxy_hears_of_it(proxy, scheme):
    status, error = _post(f"{scheme}://10.1.2.3/hook", b"{}", {})

    assert status is None
    assert "10.1.2.3 is at 10.1.2.3, not a public address" in error
    assert proxy.requests == []


def test_an_https_target_is_checked_and_then_tunnelled_through_the_proxy(proxy):
    status, _error = _post(f"https://{PUBLIC}/hook", b"{}", {})

    # The check let it through: the proxy was asked for a tunnel (and refused it).
    assert status is None
    assert proxy.requests == [("CONNECT", f"{PUBLIC}:443")]
