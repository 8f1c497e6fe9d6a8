"""SQL of project settings: small JSON values by key (the promotion policy, pre-annotation, readers
per item), each change audited. Functions take a ``Store``; what each key means is said where it
is used.
"""

from __future__ import annotations

import json
from typing import Any

from rascore.store.store import Store


def get_setting(store: Store, key: str, default: Any = None) -> Any:
    """A project setting (JSON value), or ``default`` when it was never set."""
    raw = store.value("SELECT value_json FROM project_settings WHERE key = ?", (key,))
    return json.loads(raw) if raw is not None else default


def set_setting(store: Store, key: str, value: Any, user_id: int | None = None) -> None:
    """Set a project setting (audited)."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO project_settings (key, value_json) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json",
            (key, json.dumps(value)),
        )
        store.audit("setting.set", user_id=user_id, target=key, detail={"value": value})
