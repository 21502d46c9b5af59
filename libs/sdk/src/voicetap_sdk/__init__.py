"""voicetap-sdk: subscribe to voicetap's topics with typed events, publish once, send commands.

``Subscriber`` (consumer groups, claim, dead letters, partitions, Redis Cluster), ``Client``
(commands and their results, playback into streamed calls, the topics that exist); the models in
``voicetap_sdk.events`` (Telnyx webhooks), ``commands``, ``media_events``, ``transcript_events``;
topic names in ``voicetap_sdk.topics``. See docs/CONSUMERS.md.
"""

from voicetap_sdk.client import Client, NoOutcome
from voicetap_sdk.connection import stack_redis_url
from voicetap_sdk.streams import Entry
from voicetap_sdk.subscriber import Subscriber

__all__ = ["Client", "Entry", "NoOutcome", "Subscriber", "stack_redis_url"]
