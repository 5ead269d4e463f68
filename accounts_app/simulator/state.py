"""The simulator's instances and accounts, persisted in one JSON file.

Instances are stored with the API's own field names, so answers are built by copying.
Accounts hold no password: the simulator checks a password's format and forgets it.
Every change is written atomically (a temporary file in the same directory, fsync, then
``os.replace``), so a crash or a kill never leaves a half-written state file.

Callers that check and then change (CreateAccount: duplicate name, 18 accounts) hold
``StateStore.lock`` across both steps.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# 2: VpcAuthMode the right way round, built-in Super accounts, 18 Normal accounts on the
# full instance. A state file of an older format is replaced by the demo estate.
STATE_FORMAT = 2

State = dict[str, Any]


class StateStore:
    def __init__(self, path: Path | None, seed: Callable[[], State], *, fsync: bool = True) -> None:
        self.path = path
        self._seed = seed
        # Tests turn fsync off for speed; the write stays atomic (temp file, then replace).
        self._fsync = fsync
        self.lock = threading.RLock()
        self._data: State = {}
        self.load()

    # --- Persistence ---------------------------------------------------------------------

    def load(self) -> None:
        """Read the state file, or create it from the seed (the demo estate) if missing."""
        with self.lock:
            if self.path is not None and self.path.exists():
                data = json.loads(self.path.read_text(encoding="utf-8"))
                found = data.get("format")
                if not isinstance(found, int) or not 1 <= found <= STATE_FORMAT:
                    raise ValueError(f"{self.path} is not a simulator state file.")
                if found < STATE_FORMAT:
                    self._data = self._seed()
                    self.save()
                else:
                    self._data = data
            else:
                self._data = self._seed()
                self.save()

    def save(self) -> None:
        with self.lock:
            if self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.tmp")
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(self._data, handle, indent=1, ensure_ascii=False)
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            if self._fsync:
                _fsync_directory(self.path.parent)

    def reset(self) -> None:
        with self.lock:
            self._data = self._seed()
            self.save()

    def snapshot(self) -> State:
        with self.lock:
            return copy.deepcopy(self._data)

    # --- Instances -----------------------------------------------------------------------

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._data["instances"].get(instance_id)
            return dict(found) if found is not None else None

    def instances(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(item) for item in self._data["instances"].values()]

    def put_instance(self, instance: dict[str, Any]) -> None:
        with self.lock:
            self._data["instances"][instance["InstanceId"]] = dict(instance)
            self._data["accounts"].setdefault(instance["InstanceId"], [])
            self.save()

    # --- Accounts ------------------------------------------------------------------------

    def accounts(self, instance_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(item) for item in self._data["accounts"].get(instance_id, [])]

    def add_account(self, instance_id: str, account: dict[str, Any]) -> None:
        with self.lock:
            self._data["accounts"].setdefault(instance_id, []).append(dict(account))
            self.save()

    def update_account(self, instance_id: str, account_name: str, **fields: Any) -> None:
        with self.lock:
            for account in self._data["accounts"].get(instance_id, []):
                if account["AccountName"] == account_name:
                    account.update(fields)
            self.save()

    def remove_account(self, instance_id: str, account_name: str) -> bool:
        with self.lock:
            accounts = self._data["accounts"].get(instance_id, [])
            kept = [a for a in accounts if a["AccountName"] != account_name]
            if len(kept) == len(accounts):
                return False
            self._data["accounts"][instance_id] = kept
            self.save()
            return True


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform allows opening a directory.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
