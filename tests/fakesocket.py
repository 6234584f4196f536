"""A minimal Socket Mode server for tests: the WebSocket end Slack's `apps.connections.open` hands out.

Plain `ws://` on 127.0.0.1 (slack_sdk's built-in client uses plain sockets on ports other than 443).
It sends envelopes to the connected app and records the frames the app sends back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FakeSocketMode:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.received: list[dict[str, Any]] = []
        self._client: socket.socket | None = None
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-socket-mode", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        with self._lock:
            if self._client is not None:
                self._client.close()
        self._listener.close()

    def wait_connected(self, timeout: float = 30.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._client is not None, timeout):
                raise AssertionError("the app never opened the Socket Mode connection")

    def send(self, envelope: dict[str, Any]) -> None:
        with self._lock:
            assert self._client is not None
            self._client.sendall(_frame(0x1, json.dumps(envelope).encode()))

    def wait_for(self, envelope_id: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while time.monotonic() < deadline:
                for message in self.received:
                    if message.get("envelope_id") == envelope_id:
                        return message
                self._lock.wait(0.2)
        raise AssertionError(f"no acknowledgement of envelope {envelope_id}: {self.received}")

    # --- the server ------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(0.2)
            if not self._handshake(client):
                client.close()
                continue
            with self._lock:
                self._client = client
                self._lock.notify_all()
            client.sendall(_frame(0x1, json.dumps({"type": "hello", "num_connections": 1}).encode()))
            self._read_frames(client)

    def _handshake(self, client: socket.socket) -> bool:
        request = b""
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in request and time.monotonic() < deadline:
            try:
                request += client.recv(4096)
            except TimeoutError:
                continue
        key = next(
            (
                line.split(":", 1)[1].strip()
                for line in request.decode().split("\r\n")
                if line.lower().startswith("sec-websocket-key:")
            ),
            None,
        )
        if key is None:
            return False
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        client.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        return True

    def _read_frames(self, client: socket.socket) -> None:
        buffer = b""
        while not self._closing.is_set():
            try:
                chunk = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while True:
                parsed = _parse(buffer)
                if parsed is None:
                    break
                opcode, payload, buffer = parsed
                if opcode == 0x9:  # ping: pong
                    client.sendall(_frame(0xA, payload))
                elif opcode == 0x8:
                    return
                elif opcode == 0x1:
                    with self._lock:
                        self.received.append(json.loads(payload))
                        self._lock.notify_all()


def _frame(opcode: int, payload: bytes) -> bytes:
    """A server frame: final, unmasked."""
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    if len(payload) < 65536:
        return head + bytes([126]) + struct.pack(">H", len(payload)) + payload
    return head + bytes([127]) + struct.pack(">Q", len(payload)) + payload


def _parse(buffer: bytes) -> tuple[int, bytes, bytes] | None:
    """One client frame (masked) off the front of `buffer`: (opcode, payload, rest)."""
    if len(buffer) < 2:
        return None
    opcode = buffer[0] & 0x0F
    masked = buffer[1] & 0x80
    length = buffer[1] & 0x7F
    offset = 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length = struct.unpack(">H", buffer[2:4])[0]
        offset = 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length = struct.unpack(">Q", buffer[2:10])[0]
        offset = 10
    mask = b""
    if masked:
        mask = buffer[offset : offset + 4]
        offset += 4
    if len(buffer) < offset + length:
        return None
    payload = buffer[offset : offset + length]
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload, buffer[offset + length :]
