"""The one JSON codec of voicetap: orjson, bytes in and out."""

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON; pydantic models should use ``model_dump(mode="json")`` first."""
    return orjson.dumps(value)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(data)
