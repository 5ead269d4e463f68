"""Request an account, wait for its approval, create it: the dashboard's API from a script.

    DASHBOARD_URL=http://127.0.0.1:8000 DASHBOARD_TOKEN=rdk_... ACCOUNT_PASSWORD=... \\
        python scripts/api_example.py r-bp1ord5x0c9kq2m7wa app_reader

The password comes from the environment (your secret store), goes in the body of one
HTTPS call, and is never printed. Only the standard library is used.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

BASE = os.environ.get("DASHBOARD_URL", "http://127.0.0.1:8000") + "/api/v1"
TOKEN = os.environ["DASHBOARD_TOKEN"]
if not BASE.startswith(("https://", "http://")):
    sys.exit("DASHBOARD_URL must be an http(s) URL.")


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(  # noqa: S310 (BASE is checked to be http(s) above)
        BASE + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def main(instance_id, account_name):
    status, created = call(
        "POST",
        "/requests",
        {
            "instance_id": instance_id,
            "account_name": account_name,
            "account_privilege": "RoleReadOnly",
            "justification": "Requested by the deployment pipeline.",
        },
    )
    if status != 201:
        sys.exit(f"Refused ({status}): {json.dumps(created, ensure_ascii=False)}")
    pk = created["id"]
    print(f"Request #{pk} submitted; waiting for approval...")
    while (state := call("GET", f"/requests/{pk}")[1]["status"]) == "pending":
        time.sleep(10)
    if state != "approved":
        sys.exit(f"Request #{pk} is {state}.")
    # One key per attempt: a retry of this call with the same key never creates twice.
    status, result = call(
        "POST",
        f"/requests/{pk}/execute",
        {"account_password": os.environ["ACCOUNT_PASSWORD"]},
        {"Idempotency-Key": str(uuid.uuid4())},
    )
    if status == 200 and result["created"]:
        print(f"Account {account_name} created on {instance_id}.")
    else:
        sys.exit(f"Not created ({status}): {json.dumps(result, ensure_ascii=False)}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
