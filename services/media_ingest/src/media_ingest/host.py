"""A worker's place on its host (``voicetap ingest --workers N``): the private loopback socket the
supervisor made for it, and every worker's private port by name."""

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from media_ingest.siblings import Siblings
from media_ingest.sockets import shared_socket
from voicetap_sdk.redis_client import RedisClient


@dataclass(frozen=True)
class HostShare:
    private: socket.socket  # inherited from the supervisor, the same in each life of the worker
    directory: Mapping[str, int]  # instance -> its private port, this worker's own included

    def sockets(self, host: str, port: int) -> list[socket.socket]:
        """What the worker serves: the host's shared port and its private one."""
        return [shared_socket(host, port), self.private]

    def siblings(self, redis: RedisClient, instance: str) -> Siblings:
        return Siblings(redis, {i: p for i, p in self.directory.items() if i != instance})
