#!/usr/bin/env python3
"""Deliberately broken serving programs, one per MODE, for the check-contract tests.

usage: broken_serve.py MODE [serve]   (port from SAGEMAKER_BIND_TO_PORT, default 8080)
  wrong-port     listens on 127.0.0.1 and another port, so nothing answers on PORT
  slow-start     /ping answers 503 ("loading") for BROKEN_SECONDS (default 3600)
  blocking-ping  single-threaded, inference on the request thread for BROKEN_SECONDS: /ping waits
  error-500      POST /invocations answers 500 with a Python traceback
  non-json       POST /invocations answers 200 with an HTML page
  exit-early     prints "ESD_VERSION is not set" and exits 1, as the solution's image does
"""

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

MODE = sys.argv[1] if len(sys.argv) > 1 else ""
PORT = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
SECONDS = float(os.environ.get("BROKEN_SECONDS", "3600"))
STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if MODE == "slow-start" and time.monotonic() - STARTED < SECONDS:
            return self.answer(503, b'{"status": "loading"}')
        self.answer(200, b"")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if MODE == "blocking-ping":
            time.sleep(SECONDS)
            return self.answer(200, b'{"images": []}')
        if MODE == "error-500":
            print("Traceback (most recent call last):\n  File \"serve\", line 1\nRuntimeError: CUDA out of memory",
                  flush=True)
            return self.answer(500, b"Internal Server Error: RuntimeError: CUDA out of memory", "text/plain")
        if MODE == "non-json":
            return self.answer(200, b"<html><body>done</body></html>", "text/html")
        self.answer(200, b'{"images": []}')

    def answer(self, status, data, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        print(f"broken_serve {MODE}: {format % args}", flush=True)


def main():
    if MODE == "exit-early":
        print("ESD_VERSION is not set", flush=True)
        return 1
    address = ("127.0.0.1", 0) if MODE == "wrong-port" else ("0.0.0.0", PORT)
    server_class = HTTPServer if MODE == "blocking-ping" else ThreadingHTTPServer
    server = server_class(address, Handler)
    if MODE == "wrong-port":  # the usual mistake, as a server would log it
        host, port = server.server_address[:2]
        print(f"broken_serve {MODE}: listening on {host}:{port}", flush=True)
    else:
        print(f"broken_serve {MODE}: started", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
