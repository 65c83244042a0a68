"""What the environment says about connections, read the way requests, httpx and curl read it.

``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (and their lower-case forms) with
``NO_PROXY`` choose a proxy; ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` a CA bundle. It is read here once for both transports, so that they agree;
an explicit ``proxy=`` or ``verify=`` wins, and ``trust_env=False`` ignores it all.
"""

from __future__ import annotations

import os
import ssl
import threading
import urllib.request
from typing import Dict, Optional, Tuple, Union

from yarl import URL

__all__ = ["proxy_from_environment", "verify_from_environment"]

_CA_NAMES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
_contexts: Dict[Tuple[Optional[str], Optional[str]], ssl.SSLContext] = {}
_lock = threading.Lock()


def proxy_from_environment(url: str) -> Optional[str]:
    """The proxy the environment names for ``url``, unless ``NO_PROXY`` exempts its host."""
    # getproxies_environment reads only variables named *_proxy (in any case). Most
    # environments have none: a glance at the names spares every call its full scan.
    if "_proxy" not in _variable_names():
        return None
    proxies = urllib.request.getproxies_environment()
    if not proxies:
        return None
    target = URL(url)
    proxy = proxies.get(target.scheme or "") or proxies.get("all")
    if not proxy:
        return None
    host = target.host or ""
    if target.explicit_port is not None:
        host = f"{host}:{target.explicit_port}"
    if urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _variable_names() -> str:
    """The names of the environment's variables, lower-cased, one per line.

    Read undecoded where CPython keeps them so (POSIX): decoding each name, as iterating
    ``os.environ`` does, costs about eight times as much, and this runs on every request.
    """
    try:
        raw: Dict[bytes, bytes] = os.environ._data  # type: ignore[attr-defined]
        return b"\n".join(raw).lower().decode("latin-1")
    except (AttributeError, TypeError):  # Windows keeps str names; other Pythons may differ
        return "\n".join(os.environ).lower()


def verify_from_environment(verify: Union[bool, ssl.SSLContext]) -> Union[bool, ssl.SSLContext]:
    """``verify`` itself, unless it is the default (``True``) and the environment names a CA
    bundle: then a context that trusts that bundle (made once per bundle)."""
    if verify is not True:
        return verify
    cafile = next((os.environ[name] for name in _CA_NAMES if os.environ.get(name)), None)
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        return True
    key = (cafile, capath)
    context = _contexts.get(key)
    if context is None:
        with _lock:
            context = _contexts.get(key)
            if context is None:
                context = _contexts[key] = ssl.create_default_context(cafile=cafile, capath=capath)
    return context
