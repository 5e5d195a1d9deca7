"""A loopback stand-in for the AWS JSON APIs a function's requests call (Secrets Manager,
DynamoDB, SQS), answering at once, so a request can be timed without moto (its import would dwarf
what is measured) and without a network.

By default SQS answers every entry as failed: an ingest function then releases its claims and
answers 503, having built every client and loaded every module a successful request needs.
`accept_messages=True` accepts every entry instead (with the MD5 of each body botocore checks).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    secrets: dict[str, str] = {}  # set per stub (AwsStub): SecretId → SecretString
    accept_messages = False

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        target = self.headers.get("X-Amz-Target", "")
        answer: dict[str, Any] = {}
        if target == "secretsmanager.GetSecretValue":
            name = str(request.get("SecretId", ""))
            answer = {"ARN": f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}", "Name": name}
            answer["SecretString"] = self.secrets.get(name, "")
        elif target == "AmazonSQS.SendMessageBatch":
            entries = request.get("Entries") or []
            answer = {"Successful": [], "Failed": []}
            for e in entries:
                if self.accept_messages:
                    digest = hashlib.md5(e["MessageBody"].encode()).hexdigest()  # noqa: S324
                    answer["Successful"].append(
                        {"Id": e["Id"], "MessageId": f"m-{e['Id']}", "MD5OfMessageBody": digest}
                    )
                else:
                    answer["Failed"].append({"Id": e["Id"], "SenderFault": False, "Code": "Bench"})
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

    def __init__(self, secrets: dict[str, str] | None = None, *, accept_messages: bool = False) -> None:
        handler = type(
            "Handler", (_Handler,), {"secrets": dict(secrets or {}), "accept_messages": accept_messages}
        )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
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
