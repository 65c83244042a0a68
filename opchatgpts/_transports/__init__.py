"""The HTTP libraries below the engine: each transport only moves bytes.

``base`` is the contract the engine relies on; ``aiohttp`` and ``requests`` implement it.
"""
