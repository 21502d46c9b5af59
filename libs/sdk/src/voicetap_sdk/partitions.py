"""Topic partitions: a topic split into numbered streams by call id (``TOPIC_PARTITIONS``, off at 1).

With ``TOPIC_PARTITIONS=N`` above 1, each partitioned topic is written to N streams named
``<topic>:p<k>`` (``k`` from 0 to N-1), and an event goes to partition
``k = crc32(call_control_id as UTF-8) mod N`` (zlib's CRC-32, as any language has it), partition 0
when it has no call id. So one call's events stay in order on one stream, a re-delivered webhook
(same call) lands on the partition whose de-duplication key it meets, and the partitions, whose
names carry no hash tag, hash to their own slots: on Redis Cluster a topic's load spreads over
the nodes. With N = 1 every topic is the one stream named after it, exactly as without partitions.

Partitioned: every Telnyx webhook topic (``telnyx.*``, event types voicetap has no model for
included) and the per-call events voicetap's services write. Not partitioned, whatever N is:
dead letters (``<topic>.dlq``, ``voicetap.webhooks.dlq``, one per logical topic), the command
topics and ``voicetap.command.result`` (a handful per call, written by any client and waited on by
id, so a writer or a waiter never has to compute a partition), and ``voicetap.media.playback``
(written by clients and tailed in order by every media_ingest instance).

N is one number for the whole deployment: every producer and reader must use the same, since a
reader of a different N reads other streams. Changing it on a live system: stop the gateway,
let every group drain the old streams, then restart everything with the new N.
"""

import zlib
from collections.abc import Iterable

from voicetap_sdk.topics import (
    DLQ_SUFFIX,
    MEDIA_ANALYTICS,
    MEDIA_AUDIO,
    MEDIA_DTMF,
    MEDIA_ERROR,
    MEDIA_MARK,
    MEDIA_TAKEOVER,
    RECORDING_COMPLETED,
    TELNYX_PREFIX,
    TRANSCRIPT_COMPLETED,
)

SEPARATOR = ":p"

PARTITIONED_VOICETAP_TOPICS = frozenset(
    {
        MEDIA_ANALYTICS,
        MEDIA_AUDIO,
        RECORDING_COMPLETED,
        MEDIA_ERROR,
        MEDIA_DTMF,
        MEDIA_MARK,
        MEDIA_TAKEOVER,
        TRANSCRIPT_COMPLETED,
    }
)


def is_partitioned(topic: str) -> bool:
    """Whether ``topic`` is split when there are partitions. A name with ``:`` is a stream of
    its own (a partition, an internal key), never a topic to split again."""
    if ":" in topic or topic.endswith(DLQ_SUFFIX):
        return False
    return topic.startswith(TELNYX_PREFIX) or topic in PARTITIONED_VOICETAP_TOPICS


def partition_of(call_control_id: str | None, partitions: int) -> int:
    """The partition of a call's events: CRC-32 of its UTF-8 id modulo ``partitions``; 0 without one."""
    if not call_control_id:
        return 0
    return zlib.crc32(call_control_id.encode()) % partitions


def partition_stream(topic: str, partition: int) -> str:
    """The stream of partition ``partition`` of ``topic``: ``<topic>:p<partition>``."""
    return f"{topic}{SEPARATOR}{partition}"


def stream_for(topic: str, call_control_id: str | None, partitions: int) -> str:
    """The stream an event of ``call_control_id`` on ``topic`` is written to."""
    if partitions == 1 or not is_partitioned(topic):
        return topic
    return partition_stream(topic, partition_of(call_control_id, partitions))


def streams_of(topic: str, partitions: int) -> list[str]:
    """Every stream that holds ``topic``'s entries: the topic itself, or each of its partitions."""
    if partitions == 1 or not is_partitioned(topic):
        return [topic]
    return [partition_stream(topic, k) for k in range(partitions)]


def topic_of_stream(stream: str) -> str:
    """The topic a stream holds entries of: the stream itself, or the topic of a partition."""
    topic, separator, number = stream.rpartition(SEPARATOR)
    return topic if separator and number.isdigit() and is_partitioned(topic) else stream


def topic_of_streams(topics: Iterable[str], partitions: int) -> dict[str, str]:
    """Every stream of ``topics`` mapped to its topic, in the order of ``topics`` then partitions."""
    return {stream: topic for topic in topics for stream in streams_of(topic, partitions)}
