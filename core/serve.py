"""``artgraph serve``: check the flags, lock the data folder, listen, run until stopped.

Everything is checked before the first request can arrive: a bind address off
this machine needs a token, the devices must exist, the data folder must be
free (another server on it is refused) and the port must be ours. The address
is printed on the first line of standard output once the socket listens, so a
script (or a test) starting ``--port 0`` learns where to connect.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

EXIT_OK, EXIT_INVALID = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument(
        "--data", metavar="DIR", help="folder of the job queue, uploads, cache and results (default: user data folder)"
    )
    parser.add_argument(
        "--token", help="clients must send 'Authorization: Bearer TOKEN' (default: $ARTGRAPH_TOKEN; none on loopback)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto | cpu | cuda | cuda:N | mps; a comma list runs one worker per device (cuda:0,cuda:1)",
    )
    parser.add_argument("--max-queue", type=int, metavar="N", help="refuse new jobs (429) while N are queued")
    parser.add_argument(
        "--allow-origin",
        dest="origins",
        action="append",
        default=[],
        metavar="URL",
        help="the public address of a reverse proxy in front of this server (https://art.example.org): "
        "its pages may use the API (repeatable)",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: workers in this process, one per --device; ray: one Ray actor per GPU of a cluster "
        "(pip install 'artgraph[ray]'; --data must then be shared storage)",
    )
    parser.add_argument(
        "--address", metavar="ADDR", help="with --executor ray: join this cluster (default: start Ray here)"
    )
    parser.add_argument("--workers", type=int, metavar="N", help="with --executor ray: actors (default: one per GPU)")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("artgraph")) / "serve"


def serve(args: argparse.Namespace) -> int:
    from .arguments import folder_arg
    from .client import token_from_env
    from .devices import DeviceError, resolve_device
    from .jobstore import JobStoreError

    def refuse(message: str) -> int:
        print(f"artgraph serve: error: {message}", file=sys.stderr)
        return EXIT_INVALID

    token = token_from_env(args.token)
    loopback = is_loopback(args.host)
    if not loopback and token is None:
        return refuse(
            f"--host {args.host} lets other machines connect: give a --token (or set ARTGRAPH_TOKEN), "
            "or listen on 127.0.0.1"
        )
    for origin in args.origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            return refuse(f"--allow-origin {origin!r}: give a scheme and host only, e.g. https://art.example.org")
    if not 0 <= args.port <= 65535:
        return refuse(f"--port must be 0-65535, got {args.port}")
    if args.max_queue is not None and args.max_queue < 1:
        return refuse(f"--max-queue must be 1 or more, got {args.max_queue}")
    try:
        import uvicorn

        from .server import create_app
    except ImportError as exc:
        return refuse(f"serving needs the 'serve' extra ({exc.name} is missing): pip install 'artgraph[serve]'")
    try:
        devices = tuple(str(resolve_device(d.strip())) for d in args.device.split(","))
    except DeviceError as exc:
        return refuse(str(exc))
    if args.executor != "ray" and (args.address or args.workers is not None):
        return refuse("--address and --workers are for --executor ray (locally: one worker per --device)")
    if args.workers is not None and args.workers < 1:
        return refuse(f"--workers must be 1 or more, got {args.workers}")
    if args.executor == "ray" and len(devices) > 1:
        return refuse("with --executor ray, Ray places the workers: give one --device (auto, cuda or cpu)")
    data = folder_arg("--data", args.data or str(default_data_dir()), create=True)
    from .batchrun import BatchError
    from .service import Service
    from .worker import WorkerLost

    try:
        service = Service(
            data,
            devices=devices,
            max_queue=args.max_queue,
            executor=args.executor,
            address=args.address,
            workers=args.workers,
        )
    except (JobStoreError, BatchError, WorkerLost) as exc:
        return refuse(str(exc))
    try:
        listener = listen(args.host, args.port)
    except OSError as exc:
        service.close()
        return refuse(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    resumed = service.start()
    port = listener.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    queued = service.store.count("queued")
    print(f"artgraph serve: http://{shown_host}:{port}", flush=True)
    print(
        f"  data {data}, {_workers_said(service, devices)}, {queued} queued"
        + (f" ({len(resumed)} resumed after an interruption)" if resumed else "")
        + ("; clients need the token" if token else ""),
        file=sys.stderr,
        flush=True,
    )
    page = f"http://{shown_host}:{port}/" + (f"?token={token}" if token else "")
    print(f"  watch the jobs in a browser: {page}", file=sys.stderr, flush=True)
    app = create_app(service, token=token, loopback=loopback, origins=tuple(args.origins))
    verbose = logging.getLogger().isEnabledFor(logging.INFO)
    config = uvicorn.Config(
        app,
        log_level="info" if verbose else "warning",
        access_log=verbose,
        timeout_graceful_shutdown=5,
        lifespan="on",  # its shutdown pauses the running jobs (artgraph.server)
    )
    server = make_server(config, service)
    try:
        server.run(sockets=[listener])  # a signal that stopped it is raised again once it is done
    finally:
        service.stop()
        listener.close()
    return EXIT_OK


def _workers_said(service: Any, devices: tuple[str, ...]) -> str:
    if service.ray is not None:
        place = service.ray.placement
        return f"{place.count} Ray worker{'s' if place.count != 1 else ''} ({place.device})"
    return f"device{'s' if len(devices) > 1 else ''} {', '.join(devices)}"


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every response on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(config: Any, service: Any) -> Any:
    """uvicorn's server, telling the service first when asked to exit, so that open
    event streams end at once instead of holding the shutdown."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            service.stopping.set()
            super().handle_exit(sig, frame)

    return Server(config)
