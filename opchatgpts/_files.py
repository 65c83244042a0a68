"""Reading the files of a call (``files=``) when the call is made, before any network I/O.

Paths are read, file objects drained, and every item checked against ``max_file_bytes``
here, in the caller's thread; the engine only ever sees ``Attachment`` values.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Tuple

from ._exceptions import InvalidAttachmentError
from ._protocol.uploads import Attachment, attachment_from_bytes, check_size

__all__ = ["load_files"]

_ITEM_KINDS = "a path, bytes, a binary file object, or a (filename, data, mime_type) tuple"


def load_files(items: Any, max_bytes: int) -> Tuple[Attachment, ...]:
    """The files of one call as ``Attachment`` values: read, typed and size-checked.

    ``TypeError`` for something that is not a file; ``InvalidAttachmentError`` for a file
    that cannot be read and ``AttachmentTooLargeError`` for one over ``max_bytes``, each
    naming the file.
    """
    if items is None:
        return ()
    if isinstance(items, (str, bytes, bytearray, os.PathLike)) or _is_file(items) or _is_file_tuple(items):
        raise TypeError(
            f"files must be a list of files, not {type(items).__name__}: wrap one file in a list, "
            "files=[...]"
        )
    try:
        entries = list(items)
    except TypeError:
        raise TypeError(f"files must be a list of files, not {type(items).__name__}") from None
    return tuple(_load(item, index, max_bytes) for index, item in enumerate(entries))


def _load(item: Any, index: int, max_bytes: int) -> Attachment:
    if isinstance(item, Attachment):
        check_size(item.size, item.label, max_bytes)
        return item
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if not isinstance(path, str):
            path = os.fsdecode(path)
        return attachment_from_bytes(
            _read_path(path, max_bytes), name=os.path.basename(path), label=path, max_bytes=max_bytes
        )
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
        attachment = attachment_from_bytes(data, name=None, label=f"files[{index}]", max_bytes=max_bytes)
        return Attachment(attachment.name, data, attachment.mime, f"files[{index}] ({attachment.name})")
    if isinstance(item, tuple):
        return _from_tuple(item, index, max_bytes)
    if _is_file(item):
        name = _file_name(item)
        label = name or f"files[{index}]"
        data = _read_file(item, label, max_bytes)
        return attachment_from_bytes(
            data, name=os.path.basename(name) if name else None, label=label, max_bytes=max_bytes
        )
    raise TypeError(f"files[{index}] must be {_ITEM_KINDS}, not {type(item).__name__}")


def _from_tuple(item: Tuple[Any, ...], index: int, max_bytes: int) -> Attachment:
    if len(item) != 3:
        raise TypeError(f"files[{index}] must be a (filename, data, mime_type) tuple, not {len(item)} items")
    name, data, mime = item
    if not isinstance(name, str) or not name:
        raise TypeError(f"files[{index}][0], the file name, must be a non-empty string")
    if mime is not None and (not isinstance(mime, str) or "/" not in mime):
        raise TypeError(f"files[{index}][2], the MIME type, must be a string such as 'image/png', or None")
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
    elif _is_file(data):
        data = _read_file(data, name, max_bytes)
    else:
        raise TypeError(f"files[{index}][1], the data, must be bytes or a binary file object")
    return attachment_from_bytes(data, name=os.path.basename(name) or name, mime=mime, label=name,
                                 max_bytes=max_bytes)


def _read_path(path: str, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            check_size(size, path, max_bytes)
            data = file.read(max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InvalidAttachmentError(f"{path}: cannot read the file: {reason}", filename=path) from None
    check_size(len(data), path, max_bytes)  # it grew meanwhile
    return data


def _read_file(file: Any, label: str, max_bytes: int) -> bytes:
    try:
        data = file.read(max_bytes + 1)
    except (OSError, ValueError) as exc:  # ValueError: a closed file
        raise InvalidAttachmentError(f"{label}: cannot read the file: {exc}", filename=label) from None
    if isinstance(data, str):
        raise InvalidAttachmentError(
            f"{label}: the file is open in text mode; open it in binary mode ('rb')", filename=label
        )
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidAttachmentError(
            f"{label}: read() gave {type(data).__name__}, not bytes", filename=label
        )
    check_size(len(data), label, max_bytes)
    return bytes(data)


def _is_file_tuple(value: Any) -> bool:
    """Whether ``value`` is one ``(filename, data, mime_type)`` tuple, not a tuple of files."""
    return (
        isinstance(value, tuple)
        and len(value) == 3
        and isinstance(value[0], str)
        and (isinstance(value[1], (bytes, bytearray, memoryview)) or _is_file(value[1]))
    )


def _is_file(value: Any) -> bool:
    return callable(getattr(value, "read", None))


def _file_name(file: Any) -> Optional[str]:
    """A file object's name, if it has a useful one (not a descriptor number)."""
    name = getattr(file, "name", None)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return name if isinstance(name, str) and name else None
