"""The baseline: a webhook receiver written the way the seed's docs suggest.

Flask, a synchronous handler that verifies with the official SDK's ``client.webhooks.unwrap`` and
then stores with redis-py ``XADD``, served by gunicorn with one sync worker:

    REDIS_URL=... TELNYX_PUBLIC_KEY=... gunicorn --workers 1 --worker-class sync \\
        --bind 127.0.0.1:8001 --chdir bench 'baseline_gateway:create_app()'

Same topics and fields as the gateway (``telnyx.<event_type>``: ``id``, ``type``, ``event``,
``received_at``), same answer body, so both are measured doing the same work; what it lacks
(de-duplication, dead-lettering, a 503 deadline) only makes it cheaper.
"""

import os
import time

import redis
import telnyx
from flask import Flask, Response, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)
    client = telnyx.Telnyx(
        api_key=os.environ.get("TELNYX_API_KEY", "KEY_unused"),
        public_key=os.environ["TELNYX_PUBLIC_KEY"],
    )
    store = redis.Redis.from_url(os.environ["REDIS_URL"])
    maxlen = int(os.environ.get("TOPIC_MAXLEN", "1000000"))

    @app.post("/webhooks/telnyx")
    def webhook() -> tuple[Response, int]:
        body = request.get_data(as_text=True)
        try:
            event = client.webhooks.unwrap(body, headers=request.headers)
        except ValueError as exc:
            return jsonify(error=f"invalid signature: {exc}"), 401
        data = event.data
        fields = {
            "id": data.id,
            "type": data.event_type,
            "event": body,
            "received_at": f"{time.time():.6f}",
        }
        entry = store.xadd(f"telnyx.{data.event_type}", fields, maxlen=maxlen, approximate=True)
        topic = f"telnyx.{data.event_type}"
        return jsonify(status="stored", id=data.id, topic=topic, entry=entry.decode()), 200

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    return app
