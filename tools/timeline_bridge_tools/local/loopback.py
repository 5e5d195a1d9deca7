"""Who may drive the servers `bridge dev` runs on loopback (the console, the provider sandboxes).

Binding to 127.0.0.1 keeps other machines out, not web pages: any page open in a browser here
can send requests to 127.0.0.1. Two ways, and the check that stops each:
- DNS rebinding: `evil.example` is made to resolve to 127.0.0.1, so the page is same-origin with
  the server and may read its answers. The browser still sends `Host: evil.example:<port>`: only a
  loopback name with the server's port is accepted as Host (421 otherwise).
- A cross-origin POST (a form on `evil.example` aimed at `http://127.0.0.1:<port>/...`): the
  browser sends `Origin: http://evil.example`. A request with an Origin must come from a loopback
  origin of the same port (403 otherwise). Clients that are not browsers send no Origin.
The console's actions also need its per-run token (`local.runtime`), which only a page the
console served holds.

Only the standard library: the sandboxes import this too.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# The names a browser on this machine reaches a loopback server by.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def loopback_hosts(port: int) -> frozenset[str]:
    """The `Host` values of a loopback server on `port` (on port 80, also without the port)."""
    hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES}
    if port == 80:
        hosts.update(LOOPBACK_NAMES)
    return frozenset(hosts)


def is_loopback_host(host: str | None, port: int) -> bool:
    """True when `host` (a `Host` header) names this machine's loopback server on `port`."""
    return (host or "").strip().lower() in loopback_hosts(port)


def is_loopback_origin(origin: str, port: int) -> bool:
    """True when `origin` (an `Origin` header) is `http://<loopback name>:<port>`."""
    try:
        parts = urlsplit(origin.strip().lower())
    except ValueError:
        return False
    if parts.scheme != "http" or parts.path or parts.query or parts.username is not None:
        return False
    return parts.netloc in loopback_hosts(port)


def misdirected(port: int, what: str) -> str:
    """The message of a refused `Host`: where `what` (the console, a sandbox) does answer."""
    names = ", ".join(f"http://{name}:{port}" for name in LOOPBACK_NAMES)
    return f"{what} answers only at {names} (the Host header named another host)"


def refusal(host: str | None, origin: str | None, port: int, what: str) -> tuple[int, str] | None:
    """(status, message) when a request to `what` on loopback `port` must be refused, else None.

    421 for a `Host` that is not a loopback name with `port` (DNS rebinding); 403 for an
    `Origin` that is not a loopback origin of `port` (a cross-origin request). A request without
    an Origin passes the second check: browsers send one on every cross-origin request.
    """
    if not is_loopback_host(host, port):
        return 421, misdirected(port, what)
    if origin is not None and not is_loopback_origin(origin, port):
        return 403, f"cross-origin request refused: {what} takes requests only from its own pages"
    return None
