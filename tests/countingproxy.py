"""A counting proxy before a real Prometheus: how many queries slo-bot sends, and a slow source on demand."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # slo-bot's 16 connections at once (5 by default: resets)


class CountingProxy:
    """Forwards every request to Prometheus and counts them: the source queries slo-bot sends."""

    def __init__(self, upstream: str) -> None:
        self.count = 0
        self.delay_s = 0.0  # added to every answer: a busy Prometheus
        self.lock = threading.Lock()
        proxy = self
        self.client = client = httpx.Client(base_url=upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    proxy.count += 1
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                answer = client.request(
                    self.command,
                    self.path,
                    content=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()
