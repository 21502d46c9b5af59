"""The ingest's names in Redis and on the bus, in one place.

Every key carries the ``{voicetap.ingest}`` hash tag, so the scripts that touch two of them run on
one slot of a Redis Cluster.
"""

from voicetap_sdk import topics

GROUP = "media_ingest"
LIFECYCLE_TOPICS = (
    topics.CALL_ANSWERED,
    topics.CALL_HANGUP,
    topics.CALL_FORK_STARTED,
    topics.CALL_FORK_STOPPED,
    topics.STREAMING_STARTED,
    topics.STREAMING_STOPPED,
    topics.STREAMING_FAILED,
)
STREAM_PATH = "/streams/telnyx"  # the media-stream WebSocket route, in every stream_url we ask for

_TAG = "{voicetap.ingest}:"
OWNER_PREFIX = _TAG + "call:"  # -> the instance holding the call's media
INBOX_PREFIX = _TAG + "inbox:"  # -> an instance's stream of entries forwarded to it
INSTANCE_PREFIX = _TAG + "instance:"  # -> set while the instance lives
TOKEN_PREFIX = _TAG + "stream-token:"  # -> sha256 of the call's media-stream token
ENDED_PREFIX = _TAG + "ended:"  # -> a hang-up seen (a late call.answered starts nothing)
REPAIR_PREFIX = _TAG + "repair:"  # -> the instance repairing an orphaned recording
UPLOAD_PREFIX = _TAG + "upload:"  # -> the instance uploading a dead instance's spooled recording
ALIVE = _TAG + "alive"  # zset: instance -> wall time of its last liveness beat
CAPACITY = _TAG + "capacity"  # zset: instance -> free port pairs, as of its last beat
HELD_PREFIX = _TAG + "held:"  # hash per instance: call -> what a takeover needs of it (JSON)
PARTS_PREFIX = _TAG + "parts:"  # hash per call: part -> holder, then "<part>:stored" -> where
DRAIN_PREFIX = _TAG + "drain:"  # -> the instance re-routing a dead instance's inbox
TAKEN_PREFIX = _TAG + "taken:"  # set per instance: its calls taken over (it was only stalled?)
PARTS_TTL = 7 * 86_400  # a call's parts are joined long before
INBOX_MAXLEN = 100_000
TOKEN_TTL = 86_400
ENDED_TTL = 86_400


def owner_key(call_control_id: str) -> str:
    return OWNER_PREFIX + call_control_id


def held_key(instance: str) -> str:
    return HELD_PREFIX + instance


def taken_key(instance: str) -> str:
    return TAKEN_PREFIX + instance


def parts_key(call_control_id: str) -> str:
    return PARTS_PREFIX + call_control_id


def inbox(instance: str) -> str:
    return INBOX_PREFIX + instance
