"""A loopback stand-in for the three AWS JSON APIs an ingest function's first request calls
(Secrets Manager, DynamoDB, SQS), answering at once, so a cold first request can be timed in a
fresh interpreter without moto (its import would dwarf what is measured) and without a network.

SQS answers every entry as failed (its success answer carries MD5 sums of each message): the
function then releases its claims and answers 503, having built every client and loaded every
module a successful request needs.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_VALUES: dict[str, str] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        target = self.headers.get("X-Amz-Target", "")
        answer: dict[str, Any] = {}
        if target == "secretsmanager.GetSecretValue":
            name = str(request.get("SecretId", ""))
            answer = {"ARN": f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}", "Name": name}
            answer["SecretString"] = SECRET_VALUES.get(name, "")
        elif target == "AmazonSQS.SendMessageBatch":
            entries = request.get("Entries") or []
            answer = {
                "Successful": [],
                "Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "Bench"} for e in entries],
            }
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", "bench")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class AwsStub:
    """`with AwsStub(secrets) as stub:` then point AWS_ENDPOINT_URL at `stub.url`."""

    def __init__(self, secrets: dict[str, str]) -> None:
        SECRET_VALUES.update(secrets)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> AwsStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
