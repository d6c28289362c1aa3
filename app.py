"""pare-demo's web app: the command line and the server. The page itself (one module per
tab) is pare_demo.app.ui; what it shows is computed in pare_demo.app and the core library.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--checkpoint C] [--body-model B]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from starlette.middleware import Middleware  # noqa: E402
from starlette.middleware.trustedhost import TrustedHostMiddleware  # noqa: E402

from pare_demo.app.engine import Engine  # noqa: E402
from pare_demo.app.ui import build_ui  # noqa: E402

MAX_UPLOAD = "200mb"  # videos included; images are also refused by pixel count (pare_demo.images)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(host: str, share: bool, extra: list[str]) -> list[str] | None:
    """Host headers the server answers: the name it was started on (and the other loopback
    names when that is one), so a web page whose DNS name rebinds to this machine cannot
    drive the app. None (any host) when listening on all interfaces or sharing, where the
    names users type are not known here; --allowed-host adds names."""
    if share or host in ("0.0.0.0", "::", ""):
        return ["*"] if not extra else [*extra, *LOOPBACK]
    return sorted({host, *(LOOPBACK if host in LOOPBACK else ()), *extra})


def main() -> None:
    parser = argparse.ArgumentParser(description="pare-demo web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public link")
    parser.add_argument("--allowed-host", action="append", default=[],
                        help="another Host header to answer (a DNS name of this machine); repeatable")
    parser.add_argument("--checkpoint", default=None, help="default: the bundled weights")
    parser.add_argument("--body-model", default=None, help="open, smpl or a file (default: the checkpoint's)")
    args = parser.parse_args()
    engine = Engine(args.checkpoint, args.body_model)
    # A supervisor's SIGTERM ends the app as Ctrl-C does, through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Gradio serves only its own cache (every output is copied there): no allowed_paths.
    demo = build_ui(engine)
    hosts = allowed_hosts(args.host, args.share, args.allowed_host)
    try:
        demo.queue(default_concurrency_limit=1).launch(
            server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_UPLOAD,
            enable_monitoring=False,
            app_kwargs={"middleware": [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]})
    finally:
        engine.close()


if __name__ == "__main__":
    main()
