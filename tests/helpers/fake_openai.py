"""A minimal OpenAI-compatible chat-completions server on 127.0.0.1, for offline tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class FakeOpenAI:
    """Answers POST /v1/chat/completions with ``respond(messages)`` and fixed token usage.

    ``fault`` makes it misbehave as dead endpoints do: "500" (an error status), "hang" (no answer
    for ``hang_s`` seconds) or "malformed" (a 200 whose body is not JSON).
    """

    def __init__(self, respond: Callable[[list[dict]], str], prompt_tokens: int = 1000,
                 completion_tokens: int = 200, fault: str | None = None, hang_s: float = 30.0) -> None:
        self.respond = respond
        self.requests: list[dict] = []
        self.request_times: list[float] = []  # time.monotonic() of each request
        self.fault = fault
        self.hang_s = hang_s
        self._closing = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                owner.requests.append(body)
                owner.request_times.append(time.monotonic())
                if owner.fault == "hang":
                    owner._closing.wait(owner.hang_s)
                    return
                if owner.fault == "500":
                    self._send(500, b'{"error": {"message": "model overloaded", "type": "server_error"}}')
                    return
                if owner.fault == "malformed":
                    self._send(200, b'{"id": "chatcmpl-1", "choices": [')
                    return
                payload = {
                    "id": f"chatcmpl-{len(owner.requests)}", "object": "chat.completion", "created": 0,
                    "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": owner.respond(body["messages"])}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens},
                }
                self._send(200, json.dumps(payload).encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
