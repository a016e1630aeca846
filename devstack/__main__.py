"""``python -m devstack``: run the local stack, mint dev tokens, listen, send.

python -m devstack run                       # REST :8000, WebSocket + @connections :8001
python -m devstack token alice [--admin] [--group g] [--rs256]
python -m devstack listen alice              # or: listen --token <JWT>
python -m devstack send alice "Your case status has been updated"
python -m devstack openapi                   # write openapi.json from app.py's routes and models
python -m devstack asyncapi                  # write asyncapi.json (the WebSocket API)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from devstack.tokens import DEFAULT_SECRET, mint_dev_token

CLI_ADMIN = "devstack-cli"


def _secret() -> str:
    return os.environ.get("JWT_SECRET") or DEFAULT_SECRET


def _rest_url() -> str:
    return os.environ.get("REST_URL") or f"http://127.0.0.1:{os.environ.get('REST_PORT', '8000')}"


def _ws_url() -> str:
    return os.environ.get("WS_URL") or f"ws://127.0.0.1:{os.environ.get('WS_PORT', '8001')}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the local stack in the foreground")
    run.add_argument("--rest-port", type=int, help="REST port (env REST_PORT, 8000; 0 = free)")
    run.add_argument("--ws-port", type=int, help="WebSocket port (env WS_PORT, 8001; 0 = free)")
    run.add_argument("--app", default="app:app", help="Chalice app as module:attribute")
    run.add_argument(
        "--state",
        help="keep the embedded DynamoDB in this file: loaded at start, saved as it changes "
        "and on stop (env DEVSTACK_STATE; default: in memory only)",
    )
    run.add_argument(
        "--env-file",
        help="write the app's settings for this stack here while it runs, for backend code to "
        "source (env DEVSTACK_ENV_FILE; make run: .devstack/env)",
    )

    token = commands.add_parser("token", help="mint a dev JWT signed with JWT_SECRET")
    token.add_argument("user")
    token.add_argument("--admin", action="store_true", help="grant role admin")
    token.add_argument("--group", action="append", default=[], help="add a group (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (3600)")
    token.add_argument(
        "--rs256", action="store_true", help="an RS256 token from the stack's dev issuer (1 h)"
    )

    listen = commands.add_parser("listen", help="print a user's notifications live, acking them")
    who = listen.add_mutually_exclusive_group(required=True)
    who.add_argument("user", nargs="?", help="mint a token for this user")
    who.add_argument("--token", help="use this JWT")
    listen.add_argument("--group", action="append", default=[], help="group for a minted token")
    listen.add_argument("--since", help="also replay notifications newer than this id")
    listen.add_argument("--ws-url", default=None, help="WebSocket URL (env WS_URL)")
    listen.add_argument("--json", action="store_true", help="print one JSON event per line")

    openapi = commands.add_parser("openapi", help="write the REST API's OpenAPI document")
    openapi.add_argument("--output", default=None, help="file to write (default: openapi.json)")
    openapi.add_argument("--check", action="store_true", help="fail if the file is outdated")

    asyncapi = commands.add_parser("asyncapi", help="write the WebSocket API's AsyncAPI document")
    asyncapi.add_argument("--output", default=None, help="file to write (default: asyncapi.json)")
    asyncapi.add_argument("--check", action="store_true", help="fail if the file is outdated")

    send = commands.add_parser("send", help="send a notification to a user through REST")
    send.add_argument("user")
    send.add_argument("message")
    send.add_argument("--type", choices=["info", "success", "warning", "error"])
    send.add_argument("--priority", choices=["low", "normal", "high"])
    send.add_argument("--category")
    send.add_argument("--data", help="JSON object of extra data")
    send.add_argument("--rest-url", default=None, help="REST base URL (env REST_URL)")
    send.add_argument("--token", help="admin JWT (default: minted with JWT_SECRET)")
    return parser


def _run(args: argparse.Namespace) -> int:
    from devstack.server import StackSettings, run

    settings = StackSettings.from_env(
        rest_port=args.rest_port,
        ws_port=args.ws_port,
        app_spec=args.app,
        state_file=Path(args.state) if args.state else None,
        env_file=Path(args.env_file) if args.env_file else None,
    )
    return run(settings)


def _token(args: argparse.Namespace) -> int:
    if args.rs256:
        from devstack.client import post_json

        # Only the running stack holds the issuer's key: ask it.
        payload = {"user_id": args.user, "admin": args.admin, "groups": args.group, "rs256": True}
        try:
            result = post_json(f"{_rest_url()}/dev/token", payload, token="")
        except OSError as error:
            print(f"token: is the stack running at {_rest_url()}? {error}", file=sys.stderr)
            return 1
        if result.status != 200:
            print(f"token: {_rest_url()}/dev/token answered {result.status}", file=sys.stderr)
            return 1
        print(result.body["token"])
        return 0
    print(
        mint_dev_token(
            args.user, admin=args.admin, groups=args.group, secret=_secret(), ttl_seconds=args.ttl
        )
    )
    return 0


def _listen(args: argparse.Namespace) -> int:
    from devstack.client import ListenError, ListenState, format_event, listen

    token = args.token or mint_dev_token(args.user, groups=args.group, secret=_secret())

    def output(frame: dict[str, Any]) -> None:
        print(json.dumps(frame) if args.json else format_event(frame), flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        state = ListenState(since=args.since)
        await listen(args.ws_url or _ws_url(), token, output=output, state=state, stop=stop)

    try:
        asyncio.run(main())
    except ListenError as error:
        print(f"listen: {error}", file=sys.stderr)
        return 2
    return 0


def _send(args: argparse.Namespace) -> int:
    from devstack.client import post_json

    payload: dict[str, Any] = {"user_id": args.user, "message": args.message}
    for field in ("type", "priority", "category"):
        if getattr(args, field):
            payload[field] = getattr(args, field)
    if args.data:
        payload["data"] = json.loads(args.data)
    token = args.token or mint_dev_token(CLI_ADMIN, admin=True, secret=_secret())
    url = f"{(args.rest_url or _rest_url()).rstrip('/')}/api/notifications"
    try:
        result = post_json(url, payload, token=token)
    except OSError as error:
        print(f"send: {url}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result.body, indent=2))
    return 0 if 200 <= result.status < 300 else 1


def _openapi(args: argparse.Namespace) -> int:
    from devstack.openapi import DOCUMENT, build_document, render

    return _write(args, "openapi", DOCUMENT, render(build_document()))


def _asyncapi(args: argparse.Namespace) -> int:
    from devstack.asyncapi import DOCUMENT, build_document, render

    return _write(args, "asyncapi", DOCUMENT, render(build_document()))


def _write(args: argparse.Namespace, command: str, default: Path, text: str) -> int:
    path = Path(args.output) if args.output else default
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is outdated: run python -m devstack {command}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {
        "run": _run,
        "token": _token,
        "listen": _listen,
        "send": _send,
        "openapi": _openapi,
        "asyncapi": _asyncapi,
    }
    with contextlib.suppress(BrokenPipeError):
        return commands[args.command](args)
    return 1


if __name__ == "__main__":
    sys.exit(main())
