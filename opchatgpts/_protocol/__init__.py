"""The AI Engine protocol without I/O: requests built, bodies decoded, refusals classified.

Nothing here opens a socket or sleeps. Every transport, sync or async, drives these pieces
with the bytes it moved, so there is one copy of the protocol (see h11 for the idea).
"""
