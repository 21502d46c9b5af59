"""Values read back from Redis: bytes (the client never decodes), typed ``bytes | str`` by redis-py."""


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
