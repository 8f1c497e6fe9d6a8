"""Admin: accounts and roles, importing scans (uploads; from a PACS in the PACS tab,
``views.admin_pacs``), exports, the audit log, project settings, and reader studies and
calibration sets (their tab is ``views.admin_studies``)."""

from __future__ import annotations


import pandas as pd
import streamlit as st

from rascore.services import admin, labelling, session
from rascore.services.admin import AdminError
from rascore.auth import LEVELS, ROLES
from rascore.permissions import allowed, require_any
from rascore.scale import COHORTS, MODALITIES

import ui
from views import admin_pacs, admin_studies

S = st.session_state
project, user = ui.gate(
    lambda user: require_any(user, ("manage_users", "import", "export", "audit", "settings"))
)
store = project.store

st.title("Admin")


def report(kind: str, text: str) -> None:
    S["admin.msg"] = (kind, ui.plain(text))


message = S.pop("admin.msg", None)
if message:
    getattr(st, message[0])(message[1])
sections = [
    name
    for name, action in (
        ("Users", "manage_users"),
        ("Import", "import"),
        ("PACS", "import"),
        ("Export", "export"),
        ("Audit log", "audit"),
        ("Settings", "settings"),
        ("Studies", "design_study"),
    )
    if allowed(user, action)
]
tabs = dict(zip(sections, st.tabs(sections)))


if "Users" in tabs:
    with tabs["Users"]:
        accounts = admin.users(store, user)
        st.dataframe(
            pd.DataFrame(accounts),
            hide_index=True,
            width="stretch",
            column_config={
                "can_sign_in": st.column_config.CheckboxColumn("password"),
                "active": st.column_config.CheckboxColumn("active"),
            },
        )
        add_col, change_col = st.columns(2, gap="large")
        with add_col, st.form("admin.add_user", clear_on_submit=True):
            st.markdown("**Add a user**")
            name = st.text_input(
                "User name (or the e-mail of a single sign-on user)", key="admin.new_name", max_chars=64
            )
            role = st.selectbox("Role", ROLES, key="admin.new_role")
            level = st.selectbox(
                "Experience", ["", *LEVELS], key="admin.new_level", format_func=lambda v: v or "(not set)"
            )
            password = st.text_input(
                "Password (empty: single sign-on only)", type="password", key="admin.new_password"
            )
            again = st.text_input("Password again", type="password", key="admin.new_password2")
            if st.form_submit_button("Add user", type="primary"):
                if password != again:
                    st.error("The two passwords differ.")
                else:
                    try:
                        admin.add_account(store, user, name, role, level or None, password or None)
                    except AdminError as exc:
                        st.error(ui.plain(exc))
                    else:
                        report("success", f"Added {name.strip()} ({role}).")
                        st.rerun()
        with change_col:
            st.markdown("**Change an account**")
            names = [a["name"] for a in accounts]
            target = st.selectbox("Account", names, key="admin.target")
            current = next((a for a in accounts if a["name"] == target), None)
            if current is not None:
                new_role = st.selectbox(
                    "Role", ROLES, index=ROLES.index(current["role"]), key=f"admin.role.{current['id']}"
                )
                with st.container(horizontal=True):
                    if st.button("Change role", key="admin.change_role"):
                        try:
                            admin.change_role(store, user, target, new_role)
                        except AdminError as exc:
                            report("error", str(exc))
                        else:
                            report("success", f"{target} is now {new_role}.")
                        st.rerun()
                    label = "Deactivate" if current["active"] else "Reactivate"
                    if st.button(label, key="admin.toggle_active"):
                        try:
                            admin.set_active(store, user, target, not current["active"])
                        except AdminError as exc:
                            report("error", str(exc))
                        else:
                            report("success", f"{target} {label.lower()}d.")
                        st.rerun()
                with st.form("admin.password", clear_on_submit=True):
                    new_password = st.text_input("New password", type="password", key="admin.reset_password")
                    if st.form_submit_button("Set password"):
                        try:
                            admin.reset_password(store, user, target, new_password)
                        except AdminError as exc:
                            st.error(ui.plain(exc))
                        else:
                            report("success", f"Password of {target} changed.")
                            st.rerun()
                if st.button(
                    "Clear failed sign-ins", key="admin.unlock", help="Lift a sign-in lock on this user name"
                ):
                    session.unlock(project, user, target)
                    report("success", f"Failed sign-ins of {target} cleared.")
                    st.rerun()

if "Import" in tabs:
    with tabs["Import"]:
        st.markdown(
            "Upload scans (DICOM, PNG/JPEG/TIFF/BMP stills, MP4/AVI/MOV/GIF clips), or a "
            "zip. A `manifest.csv` (columns `path, modality, cohort, patient, joint, side`, "
            "optional `sh:NAME`, `pd:NAME`, `reference_sh`, `reference_pd`) among the "
            "files or inside the zip describes each file; without one, every file gets "
            "the modality and cohort chosen here. A patient belongs to one cohort: files "
            "that would put a patient in a second cohort are refused."
        )
        uploads = st.file_uploader("Files or a zip", accept_multiple_files=True, key="admin.uploads")
        left, right = st.columns(2)
        modality = left.selectbox("Modality (without a manifest)", list(MODALITIES), key="admin.modality")
        cohort = right.selectbox("Cohort (without a manifest)", list(COHORTS), key="admin.cohort")
        if st.button("Import", type="primary", key="admin.import", disabled=not uploads):
            bar = st.progress(0.0, text="Importing…")

            def on_result(done: int, total: int, row: dict) -> None:
                bar.progress(done / total, text=f"{done} of {total}: {row['status']}")

            try:
                result = admin.import_uploads(
                    project,
                    user,
                    [(f.name, f.getvalue()) for f in uploads],
                    modality,
                    cohort,
                    on_result=on_result,
                )
            except AdminError as exc:
                st.error(ui.plain(exc))
            else:
                bar.progress(1.0, text=result.summary())
                (st.warning if result.rejected else st.success)(result.summary())
                for note in result.notes:
                    st.info(note)
                st.dataframe(
                    pd.DataFrame(result.rows, columns=["file", "status", "reason", "item_id"]),
                    hide_index=True,
                    width="stretch",
                )

if "PACS" in tabs:
    with tabs["PACS"]:
        admin_pacs.show(project, user, ui.plain)

if "Export" in tabs:
    with tabs["Export"]:
        st.markdown("Each reader's current grades, or the reference standard, as CSV or Parquet.")
        for table, title in (("labels", "Labels"), ("reference", "Reference standard")):
            columns = st.columns(2)
            for column, fmt in zip(columns, ("csv", "parquet")):
                column.download_button(
                    f"{title} ({fmt.upper()})",
                    key=f"admin.export.{table}.{fmt}",
                    data=lambda t=table, f=fmt: admin.export_file(store, user, t, f).data,
                    file_name=f"rascore-{table}.{fmt}",
                    mime="text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
                    on_click="ignore",
                    icon=":material/download:",
                )

if "Audit log" in tabs:
    with tabs["Audit log"]:
        needle = st.text_input("Filter by action, user or target", key="admin.audit_filter")
        rows = admin.audit_log(store, user, 1000)
        frame = pd.DataFrame(rows, columns=["id", "at", "user", "action", "target", "detail_json"])
        if needle:
            mask = (
                frame[["user", "action", "target"]]
                .fillna("")
                .apply(lambda col: col.str.contains(needle, case=False, regex=False))
                .any(axis=1)
            )
            frame = frame[mask]
        st.dataframe(frame, hide_index=True, width="stretch", height=480)

if "Settings" in tabs:
    with tabs["Settings"]:
        enabled = labelling.preannotation_enabled(store)
        wanted = st.toggle(
            "Pre-annotation: show readers the active model's grade",
            value=enabled,
            key="admin.preannotation",
            help="Off keeps readers blind to model output (the default).",
        )
        if wanted != enabled:
            labelling.set_preannotation(store, user, wanted)
            report("success", f"Pre-annotation turned {'on' if wanted else 'off'}.")
            st.rerun()
        current = labelling.max_readers(store)
        chosen = st.number_input(
            "Readers per item (0: every reader grades every item; 1: exclusive assignment)",
            min_value=0,
            max_value=1000,
            value=current or 0,
            step=1,
            key="admin.max_readers",
        )
        if int(chosen) != (current or 0):
            labelling.set_max_readers(store, user, int(chosen) or None)
            report("success", "Readers per item: " + (str(int(chosen)) if chosen else "everyone"))
            st.rerun()

if "Studies" in tabs:
    with tabs["Studies"]:
        admin_studies.show(store, user, report)
