"""The ``opchatgpts`` logger, and ``OPCHATGPTS_LOG`` to turn it on without code.

DEBUG has a line for every HTTP request (method, URL, status, time, attempt), each retry
with its wait and reason, and each nonce and page step; INFO only what a user should notice
(a refused nonce, a failover). Nonces show two characters at most; credentials never.
"""

from __future__ import annotations

import logging
import os

__all__ = ["LOG_ENV", "configure_from_environment"]

#: ``debug`` or ``info`` prints the SDK's log on stderr, as ``OPENAI_LOG`` does for openai.
LOG_ENV = "OPCHATGPTS_LOG"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}


class _EnvironmentHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``OPCHATGPTS_LOG`` adds (once)."""


def configure_from_environment() -> None:
    """Log to stderr at the level ``$OPCHATGPTS_LOG`` names, if it names one."""
    level = _LEVELS.get(os.environ.get(LOG_ENV, "").strip().lower())
    logger = logging.getLogger("opchatgpts")
    if level is None or any(isinstance(h, _EnvironmentHandler) for h in logger.handlers):
        return
    handler = _EnvironmentHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
