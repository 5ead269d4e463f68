"""Write a .env for demo mode with freshly generated secrets (used by `make run`).

The file is kept between runs: the audit chain stays verifiable only while
AUDIT_HMAC_KEY stays the same.
"""

from __future__ import annotations

import base64
import secrets
import string
import sys
from pathlib import Path


def demo_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "Demo-" + "".join(secrets.choice(alphabet) for _ in range(12))


# What the demo's .env says, beyond its secrets. DEBUG is off: Django's debug page is for
# a developer's own machine, not for a dashboard others sign in to; static files come
# from WhiteNoise, errors from our own pages. HTTPS is off: the demo is plain HTTP on
# 127.0.0.1. The demo users are all created at once, so no wait for new approvers.
DEMO_SETTINGS = {"DEBUG": "false", "HTTPS": "false", "APPROVER_WAIT_HOURS": "0"}


def upgrade(target: Path) -> None:
    """Bring a .env written by an earlier version (DEBUG=true) to DEMO_SETTINGS, keeping
    its secrets (the audit chain stays verifiable only with the same key)."""
    lines = target.read_text().splitlines()
    present = {line.split("=", 1)[0] for line in lines if "=" in line}
    lines = [
        f"{name}={DEMO_SETTINGS[name]}" if name in DEMO_SETTINGS else line
        for line, name in ((line, line.split("=", 1)[0]) for line in lines)
    ]
    lines += [f"{name}={value}" for name, value in DEMO_SETTINGS.items() if name not in present]
    target.write_text("\n".join(lines) + "\n")


def main(path: str) -> None:
    target = Path(path)
    if target.exists():
        upgrade(target)
        return
    simulator_key_id = "LTAI" + secrets.token_hex(8)
    target.write_text(
        "\n".join(
            [
                "# Written by `make run` for demo mode. Delete it to start over.",
                *(f"{name}={value}" for name, value in DEMO_SETTINGS.items()),
                "DEMO_MODE=true",
                f"SECRET_KEY={secrets.token_urlsafe(50)}",
                f"AUDIT_HMAC_KEY={secrets.token_urlsafe(48)}",
                "# Encrypts the chat channels' webhook URLs and secrets (a Fernet key).",
                f"CHAT_ENCRYPTION_KEYS={base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}",
                f"DEMO_PASSWORD={demo_password()}",
                "# The local simulator of the R-KVStore API, started by `make run`.",
                "KVSTORE_ENDPOINT=http://127.0.0.1:8001",
                "KVSTORE_REGIONS=cn-hangzhou,cn-shanghai",
                f"ALIBABA_CLOUD_ACCESS_KEY_ID={simulator_key_id}",
                f"ALIBABA_CLOUD_ACCESS_KEY_SECRET={secrets.token_urlsafe(30)}",
                "",
            ]
        )
    )
    target.chmod(0o600)
    print(f"Wrote {target} with generated demo secrets.")


if __name__ == "__main__":
    main(sys.argv[1])
