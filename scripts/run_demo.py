"""Run the demo: the local R-KVStore simulator, the dashboard, one background worker
and local fakes of the chat platforms, stopped together.

Started by `make run`. The dashboard is pointed at the simulator through
KVSTORE_ENDPOINT; the simulator keeps its state in .simulator-state.json. A chat
channel of each platform (DingTalk, Feishu/Lark, WeCom, Slack) posts to the fakes,
whose page lists every message they received.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The worker's output: the mails it sends (the console backend prints them) and its tasks'
# lines. Its first jobs (the first sync, the account sweep, their mails) print hundreds
# of lines a few seconds after start; in the terminal they buried the sign-in lines.
WORKER_LOG = ROOT / "var" / "worker.log"


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"Nothing started on {host}:{port}.")


def check_ports_free(ports: dict[str, tuple[str, int]]) -> None:
    """Stop before anything starts when a port is taken: otherwise the dashboard would
    start anyway, and sync against whatever answers there (another demo's simulator)."""
    busy = [f"{what}: {host}:{port}" for what, (host, port) in ports.items() if in_use(host, port)]
    if busy:
        raise SystemExit(
            "Another program is listening on a port the demo needs:\n  "
            + "\n  ".join(busy)
            + "\nStop it, or choose other ports, e.g. make run PORT=8100 SIMULATOR_PORT=8101"
        )


def in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers do: a port only holding connections that are closing is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


CHAT_LANGUAGES = {"dingtalk": "zh-hans", "feishu": "en", "wecom": "zh-hans", "slack": "en"}


def ensure_chat_key() -> None:
    """A .env written before chat channels existed gets its encryption key once."""
    if os.environ.get("CHAT_ENCRYPTION_KEYS") or read_env_value("CHAT_ENCRYPTION_KEYS"):
        return
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    with (ROOT / ".env").open("a") as env_file:
        env_file.write(f"CHAT_ENCRYPTION_KEYS={key}\n")


def start_chat_fakes(manage: list[str], env: dict, port: int) -> subprocess.Popen:
    """The fakes, and a demo channel of each platform pointed at them."""
    secret = secrets.token_urlsafe(16)
    fakes = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fixtures.chat_fakes",
            "--port",
            str(port),
            "--secret",
            secret,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    wait_for_port("127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    urls = {
        "dingtalk": f"{base}/robot/send?access_token=demo-token",
        "feishu": f"{base}/open-apis/bot/v2/hook/demo-token",
        "wecom": f"{base}/cgi-bin/webhook/send?key=demo-token",
        "slack": f"{base}/services/demo-token",
    }
    for kind, url in urls.items():
        name = f"demo-{kind}"
        subprocess.run([*manage, "chat_channel", "remove", name], env=env, capture_output=True)
        subprocess.run(
            [
                *manage,
                "chat_channel",
                "add",
                f"--name={name}",
                f"--kind={kind}",
                f"--url={url}",
                f"--secret={secret}",
                f"--language={CHAT_LANGUAGES[kind]}",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return fakes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--simulator-port", type=int, default=8001)
    parser.add_argument(
        "--sso",
        action="store_true",
        help="also start the demo OpenID provider and sign in through it (make run-sso)",
    )
    parser.add_argument("--idp-port", type=int, default=8002)
    parser.add_argument("--chat-port", type=int, default=8003)
    args = parser.parse_args()
    check_ports_free(
        {
            "the dashboard (PORT)": (args.host, args.port),
            "the simulator (SIMULATOR_PORT)": ("127.0.0.1", args.simulator_port),
            "the chat fakes (--chat-port)": ("127.0.0.1", args.chat_port),
            **({"the demo IdP (--idp-port)": ("127.0.0.1", args.idp_port)} if args.sso else {}),
        }
    )
    ensure_chat_key()

    env = dict(
        os.environ,
        KVSTORE_ENDPOINT=f"http://127.0.0.1:{args.simulator_port}",
        **site_url_env(args.host, args.port),
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    idp = start_demo_idp(env, args) if args.sso else None
    simulator = subprocess.Popen(
        [
            *manage,
            "kvstore_simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.simulator_port),
            "--state",
            str(ROOT / ".simulator-state.json"),
            # A new account stays Unavailable (and the instance refuses the next one) for
            # 15 s, not the real minute: long enough to see both in the demo, short
            # enough not to stall a walk-through.
            "--activation-seconds",
            "15",
        ],
        env=env,
    )
    dashboard = worker = chat = None
    try:
        wait_for_port("127.0.0.1", args.simulator_port)
        subprocess.run([*manage, "sync_instances"], env=env, check=False)
        chat = start_chat_fakes(manage, env, args.chat_port)
        dashboard = start_dashboard(manage, args.host, args.port, env)
        # Mail, "sync now" and the periodic jobs run here (SQLite: one worker is enough).
        worker = start_worker(manage, env)
        # Last, once the dashboard answers: the lines a newcomer needs, under everything
        # the servers print as they start.
        wait_for_port(args.host, args.port)
        print_sign_in(args.host, args.port, args.chat_port)
        processes = (simulator, dashboard, worker, chat, *([idp] if idp else []))
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in (worker, dashboard, simulator, chat, idp):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in (worker, dashboard, simulator, chat, idp):
            if process is not None:
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()


def start_worker(manage: list[str], env: dict) -> subprocess.Popen:
    WORKER_LOG.parent.mkdir(exist_ok=True)
    with WORKER_LOG.open("ab") as log:  # the worker keeps its own copy of the descriptor
        return subprocess.Popen(
            [*manage, "run_worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def start_dashboard(manage: list[str], host: str, port: int, env: dict) -> subprocess.Popen:
    """The dashboard as the demo runs it: DEBUG off (.env), so runserver serves no static
    file itself; WhiteNoise serves the collected ones, hashed as in production."""
    subprocess.run(
        [*manage, "collectstatic", "--no-input", "--verbosity", "0"], env=env, check=True
    )
    return subprocess.Popen([*manage, "runserver", f"{host}:{port}", "--noreload"], env=env)


def start_demo_idp(env: dict, args) -> subprocess.Popen:
    """The demo OpenID provider (scripts/oidc_provider), and the dashboard pointed at it.

    Its users (users.json: alice, bob, carol, dave, erin, mallory) share DEMO_PASSWORD;
    its client secret is made afresh at every start.
    """
    site = f"http://{args.host}:{args.port}"
    secret = secrets.token_urlsafe(32)
    script_dir = ROOT / "scripts" / "oidc_provider"
    if not (script_dir / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=script_dir, check=True)
    idp_env = dict(
        env,
        OIDC_PROVIDER_PORT=str(args.idp_port),
        OIDC_CLIENT_ID="dashboard-demo",
        OIDC_CLIENT_SECRET=secret,
        OIDC_REDIRECT_URIS=f"{site}/accounts/oidc/idp/login/callback/",
        OIDC_POST_LOGOUT_REDIRECT_URIS=f"{site}/login/",
        DEMO_PASSWORD=env.get("DEMO_PASSWORD") or read_env_value("DEMO_PASSWORD"),
    )
    idp = subprocess.Popen(["node", "server.mjs"], cwd=script_dir, env=idp_env)
    wait_for_port("127.0.0.1", args.idp_port)
    env.update(
        OIDC_ISSUER=f"http://127.0.0.1:{args.idp_port}",
        OIDC_CLIENT_ID="dashboard-demo",
        OIDC_CLIENT_SECRET=secret,
        OIDC_PROVIDER_NAME="Demo IdP",
        OIDC_ROLE_MAP="dba-requesters=Requesters,dba-approvers=Approvers,secops=Auditors,"
        "platform-admins=staff",
    )
    print(
        "\n  Demo IdP:   alice (requester), bob and carol (approvers), dave (auditor),\n"
        "              erin (approver, staff), mallory (no role): the same password\n",
        flush=True,
    )
    return idp


def print_sign_in(host: str, port: int, chat_port: int) -> None:
    password = os.environ.get("DEMO_PASSWORD") or read_env_value("DEMO_PASSWORD")
    print(
        f"\n  Dashboard:  http://{host}:{port}/\n"
        f"  Sign in as requester, approver, approver2, auditor or admin\n"
        f"  Password:   {password}   (DEMO_PASSWORD in .env)\n"
        f"  Chat:       http://127.0.0.1:{chat_port}/   (what the demo chat channels received)\n"
        f"  Mail:       {WORKER_LOG.relative_to(ROOT)}   (what the worker sent and did: "
        f"tail -f it)\n"
        f"  Stop with Ctrl-C (stops the simulator and the worker too).\n",
        flush=True,
    )


def site_url_env(host: str, port: int) -> dict[str, str]:
    """SITE_URL, the address mails and chat messages link to, where this demo serves the
    dashboard (PORT), unless the environment or .env names one."""
    if os.environ.get("SITE_URL") or read_env_value("SITE_URL"):
        return {}
    return {"SITE_URL": f"http://{host}:{port}"}


def read_env_value(name: str) -> str:
    env_file = ROOT / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith(f"{name}="):
                return line.split("=", 1)[1]
    return ""


if __name__ == "__main__":
    main()
