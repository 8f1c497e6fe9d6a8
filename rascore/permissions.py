"""Who may do what: roles mapped to actions, checked inside every library function that acts.

Pages hide what a role cannot use, but hiding is a courtesy: the check that counts is
``require(user, action)`` in the function that does the work, which raises PermissionDenied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROLES: tuple[str, ...] = ("reader", "expert", "admin")

ACTIONS: dict[str, frozenset[str]] = {
    "grade": frozenset({"reader", "expert", "admin"}),  # grade items in one's own queue
    "view_grades": frozenset({"expert", "admin"}),  # see other readers' grades
    "adjudicate": frozenset({"expert", "admin"}),  # set the reference standard
    "export": frozenset({"expert", "admin"}),  # download labels and the reference
    "view_models": frozenset({"expert", "admin"}),  # model outputs outside pre-annotation
    "view_results": frozenset({"expert", "admin"}),  # dashboards and the reader study
    "train": frozenset({"expert", "admin"}),  # start or cancel training jobs
    "import": frozenset({"admin"}),  # import scans
    "manage_users": frozenset({"admin"}),  # add users, change roles, deactivate
    "settings": frozenset({"admin"}),  # project settings (pre-annotation...)
    "audit": frozenset({"admin"}),  # read the audit log
    "design_study": frozenset({"admin"}),  # design, open and close reader studies and calibration sets
    "read_study": frozenset({"reader", "expert", "admin"}),  # read in a study one is enrolled in
    "calibrate": frozenset({"reader", "expert", "admin"}),  # read a calibration set, with feedback
}

DESCRIPTIONS: dict[str, str] = {
    "grade": "grade items",
    "view_grades": "see other readers' grades",
    "adjudicate": "adjudicate disagreements",
    "export": "export labels",
    "view_models": "see model outputs",
    "view_results": "see results dashboards",
    "train": "start training",
    "import": "import scans",
    "manage_users": "manage users",
    "settings": "change project settings",
    "audit": "read the audit log",
    "design_study": "design reader studies",
    "read_study": "read in reader studies",
    "calibrate": "take reader calibration",
}


class PermissionDenied(PermissionError):
    """The signed-in user's role does not allow this action."""


def role_of(user: Mapping | None) -> str | None:
    """The role of an active user row, or None for no user or a deactivated one."""
    if not user:
        return None
    if "active" in user and not user["active"]:
        return None
    role = user.get("role")
    return role if role in ROLES else None


def allowed(user: Mapping | None, action: str) -> bool:
    """Whether this user may perform ``action`` (unknown actions are never allowed)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    role = role_of(user)
    return role is not None and role in ACTIONS[action]


def require(user: Mapping | None, action: str) -> None:
    """Raise PermissionDenied unless this user may perform ``action``."""
    if not allowed(user, action):
        who = f"{user.get('name')} ({user.get('role')})" if user else "a signed-out visitor"
        raise PermissionDenied(f"{who} may not {DESCRIPTIONS[action]}")


def require_any(user: Mapping | None, actions: tuple[str, ...]) -> None:
    """Raise PermissionDenied unless this user may perform at least one of ``actions``."""
    if not any(allowed(user, a) for a in actions):
        who = f"{user.get('name')} ({user.get('role')})" if user else "a signed-out visitor"
        raise PermissionDenied(f"{who} may not " + " or ".join(DESCRIPTIONS[a] for a in actions))


@dataclass(frozen=True)
class PageSpec:
    """One page of the app: its file, title, icon and the actions of which it needs any."""

    path: str
    title: str
    icon: str
    needs: tuple[str, ...] = ()
    default: bool = False


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/home.py", "Home", ":material/home:", (), default=True),
    PageSpec("pages/label.py", "Label", ":material/edit_note:", ("grade",)),
    PageSpec("pages/adjudicate.py", "Adjudicate", ":material/gavel:", ("adjudicate",)),
    PageSpec("pages/train.py", "Train", ":material/model_training:", ("train",)),
    PageSpec("pages/predict.py", "Predict & explain", ":material/insights:", ("view_models",)),
    PageSpec("pages/dashboard.py", "Dashboard", ":material/monitoring:", ("view_results",)),
    PageSpec("pages/readers.py", "Reader study", ":material/groups:", ("view_results",)),
    PageSpec(
        "pages/admin.py",
        "Admin",
        ":material/admin_panel_settings:",
        ("manage_users", "import", "export", "audit", "settings"),
    ),
)


def pages_for(user: Mapping | None, root: str | Path = ".") -> list[PageSpec]:
    """The pages this user may open, among those whose file exists under ``root``."""
    root = Path(root)
    return [
        page
        for page in PAGES
        if (root / page.path).is_file() and (not page.needs or any(allowed(user, a) for a in page.needs))
    ]
