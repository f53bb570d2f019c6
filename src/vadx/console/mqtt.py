"""The console's events on MQTT, in the style Frigate's users know (Home Assistant and many
other tools read it):

============================  =============================================================
topic                         payload
============================  =============================================================
``vadx/available``            ``online`` / ``offline`` (retained; ``offline`` is also the
                              broker's last will, sent when vadx vanishes)
``vadx/events``               ``{"type": "new" | "update" | "end", "before": …, "after": …}``:
                              the event before and after the change (``before`` is null for
                              ``new``); an event carries its camera, class, scores, domain
                              flag, times, review state and ``links`` to its clip and to the
                              API
``vadx/<camera>/anomaly``     ``ON`` while an event lasts on the camera, else ``OFF``
                              (retained: a binary sensor)
``vadx/<camera>/status``      the camera's live status as JSON (retained)
============================  =============================================================

``vadx`` is the topic prefix (``MqttSettings.prefix``). Messages go out with QoS 1 from a
background thread; while the broker is away they wait in the client's queue (at most
``queue`` of them, the oldest dropped first) and the client reconnects by itself, so a dead
broker never holds up detection.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

from vadx.console.recording import say_outage
from vadx.errors import ConfigError


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to publish.

    Attributes:
        host, port: the broker.
        prefix: the topics' first level.
        client_id: the client's name at the broker.
        username, password: the broker's login, if it asks for one.
        queue: messages kept while the broker is away.
    """

    host: str
    port: int = 1883
    prefix: str = "vadx"
    client_id: str = "vadx"
    username: str | None = None
    password: str | None = None
    queue: int = 1000

    @classmethod
    def parse(cls, text: str, **settings: Any) -> MqttSettings:
        """``HOST``, ``HOST:PORT`` or ``mqtt://[USER[:PASSWORD]@]HOST[:PORT]``."""
        url = urlparse(text if "://" in text else f"mqtt://{text}")
        if url.scheme != "mqtt" or not url.hostname:
            raise ConfigError(f"an MQTT broker is HOST[:PORT] or mqtt://HOST[:PORT], got {text!r}")
        try:
            port = url.port or 1883
        except ValueError:
            raise ConfigError(f"the MQTT broker's port must be 1 to 65535, got {text!r}") from None
        return cls(url.hostname, port, username=url.username, password=url.password, **settings)


class MqttPublisher:
    """Publishes the console's events and camera states (module doc) to an MQTT broker."""

    def __init__(self, settings: MqttSettings) -> None:
        import paho.mqtt.client as mqtt

        self.settings = settings
        self.connected = threading.Event()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id, clean_session=True
        )
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        client.will_set(self.topic("available"), "offline", qos=1, retain=True)
        client.max_queued_messages_set(settings.queue)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *_: self.connected.clear()
        client.on_connect_fail = self._on_connect_fail
        self._said_down = False  # one warning per outage
        self.client = client
        client.connect_async(settings.host, settings.port, keepalive=30)
        # the first message queued, so the first sent; again on every reconnection (on_connect)
        client.publish(self.topic("available"), "online", qos=1, retain=True)
        client.loop_start()

    def topic(self, *levels: str) -> str:
        """``prefix/levels…``."""
        return "/".join([self.settings.prefix, *levels])

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            self._on_connect_fail(client, userdata, reason)
            return
        client.publish(self.topic("available"), "online", qos=1, retain=True)
        self.connected.set()
        self._said_down = False

    def _on_connect_fail(self, client: Any, userdata: Any, reason: Any = None) -> None:
        """Say once per outage that the broker cannot be reached (messages wait meanwhile)."""
        if not self._said_down:
            self._said_down = True
            where = f"{self.settings.host}:{self.settings.port}"
            detail = f" ({reason})" if reason is not None else ""
            say_outage(
                f"the MQTT broker {where} cannot be reached{detail}; messages wait (at most "
                f"{self.settings.queue}) and the connection is retried every 1 to 30 s"
            )

    def event(self, kind: str, after: dict[str, Any], before: dict[str, Any] | None = None) -> None:
        """An event is ``new``, changed (``update``) or over (``end``): ``vadx/events``, and
        the camera's ``anomaly`` state."""
        if kind not in ("new", "update", "end"):
            raise ValueError(f"an event message is new, update or end, got {kind!r}")
        message = {"type": kind, "before": before, "after": after}
        self._publish(self.topic("events"), json.dumps(message))

    def anomaly(self, camera: str, on: bool) -> None:
        """The camera's binary sensor: ``ON`` while an event lasts on it."""
        self._publish(self.topic(camera, "anomaly"), "ON" if on else "OFF", retain=True)

    def status(self, camera: str, status: Any) -> None:
        """The camera's live status (a :class:`~vadx.console.engine.CameraStatus`)."""
        self._publish(self.topic(camera, "status"), json.dumps(asdict(status)), retain=True)

    def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain)

    def close(self, timeout: float = 5.0) -> None:
        """Say ``offline``, send what is queued (waiting up to ``timeout`` s) and disconnect."""
        info = self.client.publish(self.topic("available"), "offline", qos=1, retain=True)
        if self.connected.is_set():
            # the broker may go away meanwhile: then its last will says offline
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()
