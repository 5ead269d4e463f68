"""Run the simulator in the foreground: ``python -m accounts_app.simulator.cli`` or
``manage.py kvstore_simulator`` (``--help`` for the flags)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from .httpserver import SimulatorServer
from .server import Simulator
from .service import DEFAULT_ACTIVATION_DELAY

# The package's logger: the other modules' loggers are its children.
log = logging.getLogger("accounts_app.simulator")


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    state_path: Path | str,
    access_key_id: str,
    access_key_secret: str,
    activation_delay: float = DEFAULT_ACTIVATION_DELAY,
) -> None:
    """Run the simulator in the foreground until SIGINT or SIGTERM."""
    _configure_logging()
    simulator = Simulator(
        state_path=state_path,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        activation_delay=activation_delay,
    )
    server = SimulatorServer(simulator, host, port)

    stopping = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        # Only the first signal stops the server: Ctrl-C under `make run` reaches this
        # process both from the terminal and from the runner, and a second interrupt must
        # not break the shutdown.
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    print(
        f"R-KVStore simulator listening on {server.endpoint} "
        f"(state: {simulator.store.path}, access key id: {access_key_id})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        # Python restores the default handlers when it exits; a late duplicate signal
        # would then kill the process and turn a clean stop into exit status 130.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("R-KVStore simulator stopped.", flush=True)


def _configure_logging() -> None:
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(description="Local R-KVStore API simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--state", default="var/kvstore-simulator.json", help="state file (created if missing)"
    )
    parser.add_argument(
        "--access-key-id", default=None, help="default: $ALIBABA_CLOUD_ACCESS_KEY_ID"
    )
    parser.add_argument(
        "--access-key-secret", default=None, help="default: $ALIBABA_CLOUD_ACCESS_KEY_SECRET"
    )
    parser.add_argument(
        "--activation-seconds",
        "--activation-delay",
        dest="activation_delay",
        type=float,
        default=DEFAULT_ACTIVATION_DELAY,
        help="seconds a new account stays Unavailable (default: 60, like the real service)",
    )
    return parser


def command(state_path: Path | str, port: int = 0) -> list[str]:
    """The command line that runs the simulator as a process of its own; with port 0 it
    picks a free port and prints it in its first line ("listening on http://...")."""
    return [sys.executable, "-m", __name__, "--port", str(port), "--state", str(state_path)]


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    key_id = args.access_key_id or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
    secret = args.access_key_secret or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
    if not key_id or not secret:
        raise SystemExit(
            "Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or pass "
            "--access-key-id and --access-key-secret)."
        )
    serve(
        host=args.host,
        port=args.port,
        state_path=args.state,
        access_key_id=key_id,
        access_key_secret=secret,
        activation_delay=args.activation_delay,
    )


if __name__ == "__main__":
    main()
