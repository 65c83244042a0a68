"""A real proxy server for the tests: pproxy (HTTP, SOCKS4, SOCKS5) on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from typing import List

from faultserver import free_port

__all__ = ["ProxyServer", "SECRET"]

#: The password of the proxies that ask for one (user ``user``).
SECRET = "s3cr3t-pw"


class ProxyServer:
    """pproxy in a child process (``scheme``: socks5, socks4, http), logging each connection
    it relays."""

    def __init__(self, scheme: str, auth: bool = True) -> None:
        self.port = free_port()
        listen = f"{scheme}://127.0.0.1:{self.port}" + (f"#user:{SECRET}" if auth else "")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pproxy", "-l", listen, "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("pproxy did not start")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def url(self, scheme: str, password: str = SECRET) -> str:
        return f"{scheme}://user:{password}@127.0.0.1:{self.port}"

    def relayed_to(self, port: int, timeout: float = 3.0) -> bool:
        """Whether it relayed a connection to ``port`` (waiting a little for its log)."""
        deadline = time.monotonic() + timeout
        while not any(f":{port}" in line for line in self.lines):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
