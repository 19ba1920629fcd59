"""What learning produced and what is served: training runs, adapter versions, registered
models, and the pipeline's decision log.

The served version is one ``state`` row (``served_adapter``) that a running chat polls; every
change of it happens in one transaction with the adapter rows it refers to, so a reader sees
the old version or the new one, never a version without its row.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..records import AdapterVersion, ModelEntry, TrainingRun
from .base import StoreBase, _l
from .migrations import _now


class VersionsMixin(StoreBase):
    # --- training runs --------------------------------------------------------------------------
    def start_run(self, method: str, settings: dict[str, Any], n_samples: int) -> TrainingRun:
        with self.transaction():
            rid = self.db["training_runs"].insert(
                {"status": "running", "method": method, "started_at": _now(), "settings": json.dumps(settings),
                 "n_samples": n_samples, "pid": os.getpid()}).last_pk
        return self.get_run(rid)

    def update_run(self, rid: int, **changes: Any) -> None:
        for key in ("settings", "metrics", "gate"):
            if key in changes:
                changes[key] = json.dumps(changes[key])
        if changes.get("status") in ("done", "failed", "refused", "promoted") and "finished_at" not in changes:
            changes["finished_at"] = _now()
        with self.transaction():
            self.db["training_runs"].update(rid, changes)

    def get_run(self, rid: int) -> TrainingRun:
        return _run(self._one("select * from training_runs where id = ?", [rid],
                              f"No training run {rid}; `clawdesk runs list` shows the ids."))

    def runs(self, limit: int | None = None) -> list[TrainingRun]:
        sql = "select * from training_runs order by id desc" + (f" limit {int(limit)}" if limit else "")
        return [_run(r) for r in self._rows(sql)]

    # --- adapters -------------------------------------------------------------------------------
    def add_adapter(self, path: str, gguf_path: str = "", parent_version: int | None = None,
                    run_id: int | None = None, kind: str = "adapter", metrics: dict | None = None,
                    trained_on: list[int] | None = None) -> AdapterVersion:
        with self.transaction():
            version = self.db["adapters"].insert(
                {"path": path, "gguf_path": gguf_path, "parent_version": parent_version, "run_id": run_id,
                 "kind": kind, "metrics": json.dumps(metrics or {}), "trained_on": json.dumps(trained_on or []),
                 "created_at": _now()}).last_pk
        return self.get_adapter(version)

    def record_promotion(self, version: int, path: str, gguf_path: str, kind: str, parent_version: int | None,
                         run_id: int | None, metrics: dict | None, trained_on: list[int] | None) -> AdapterVersion:
        """Insert the new version and make it the served one in ONE transaction: readers see
        either the old served version or the new one, never a version without its row."""
        now = _now()
        with self.transaction():
            self._insert("adapters",
                         {"version": version, "path": path, "gguf_path": gguf_path, "parent_version": parent_version,
                          "run_id": run_id, "kind": kind, "metrics": json.dumps(metrics or {}),
                          "trained_on": json.dumps(trained_on or []), "created_at": now, "promoted_at": now})
            self.db.execute("insert or replace into state (key, value) values ('served_adapter', ?)", [str(version)])
        return self.get_adapter(version)

    def set_served(self, version: int | None) -> None:
        """Serve ``version`` (None = the base model); a running chat picks it up between turns."""
        now = _now()
        with self.transaction():
            current = self.db.execute("select value from state where key = 'served_adapter'").fetchone()
            current_v = int(current[0]) if current and current[0] else None
            if current_v is not None and current_v != version:
                self.db.execute("update adapters set rolled_back_at = ? where version = ?", [now, current_v])
            if version is None:
                self.db.execute("delete from state where key = 'served_adapter'")
            else:
                self.db.execute("update adapters set rolled_back_at = null where version = ?", [version])
                self.db.execute("insert or replace into state (key, value) values ('served_adapter', ?)", [str(version)])

    def delete_adapter_row(self, version: int) -> None:
        with self.transaction():
            self.db.execute("delete from adapters where version = ?", [version])

    def update_adapter(self, version: int, **changes: Any) -> None:
        if "metrics" in changes:
            changes["metrics"] = json.dumps(changes["metrics"])
        with self.transaction():
            self.db["adapters"].update(version, changes)

    def get_adapter(self, version: int) -> AdapterVersion:
        return _adapter(self._one("select * from adapters where version = ?", [version],
                                  f"No adapter version {version}; `clawdesk adapters list` shows them."))

    def adapters(self) -> list[AdapterVersion]:
        return [_adapter(r) for r in self._rows("select * from adapters order by version desc")]

    def served_version(self) -> int | None:
        value = self.get_state("served_adapter")
        return int(value) if value else None

    # --- models ---------------------------------------------------------------------------------
    def add_model(self, entry: ModelEntry) -> None:
        with self.transaction():
            self.db["models"].upsert(
                {"name": entry.name, "path": entry.path, "sha256": entry.sha256, "source": entry.source,
                 "license": entry.license, "template_notes": entry.template_notes,
                 "hf_checkpoint": entry.hf_checkpoint, "added_at": _now()}, pk="name")

    def user_models(self) -> list[ModelEntry]:
        return [ModelEntry(r["name"], r["path"], r["sha256"], r["source"], r["license"], r["template_notes"],
                           r["hf_checkpoint"]) for r in self._rows("select * from models order by name")]

    def remove_model(self, name: str) -> None:
        with self.transaction():
            self.db.execute("delete from models where name = ?", [name])

    # --- pipeline log ---------------------------------------------------------------------------
    def log_pipeline(self, trigger: str, decision: str, detail: str = "", run_id: int | None = None,
                     at: str | None = None) -> None:
        with self.transaction():
            self.db["pipeline_log"].insert({"at": at or _now(), "trigger": trigger, "decision": decision,
                                            "detail": detail, "run_id": run_id})

    def pipeline_log(self, limit: int = 20, decisions: list[str] | None = None) -> list[dict[str, Any]]:
        """The newest decisions first; only those named in ``decisions`` when given."""
        where = f" where decision in ({', '.join('?' for _ in decisions)})" if decisions else ""
        return self._rows(f"select * from pipeline_log{where} order by id desc limit {int(limit)}", decisions or [])


def _run(r: dict[str, Any]) -> TrainingRun:
    return TrainingRun(
        id=r["id"], status=r["status"], method=r["method"], started_at=r["started_at"],
        finished_at=r["finished_at"] or "", n_samples=r["n_samples"] or 0, settings=_l(r["settings"], {}),
        metrics=_l(r["metrics"], {}), gate=_l(r["gate"], {}), candidate_path=r["candidate_path"] or "",
        error=r["error"] or "", pid=r.get("pid"))


def _adapter(r: dict[str, Any]) -> AdapterVersion:
    return AdapterVersion(
        version=r["version"], path=r["path"], parent_version=r["parent_version"], run_id=r["run_id"],
        gguf_path=r["gguf_path"] or "", kind=r["kind"] or "adapter", metrics=_l(r["metrics"], {}),
        created_at=r["created_at"], promoted_at=r["promoted_at"], rolled_back_at=r["rolled_back_at"],
        trained_on_forgotten=bool(r["trained_on_forgotten"]))
