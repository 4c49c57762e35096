"""Queries over a version's decisions, for the refresh's later steps, audits and `trace`.

A version made from an unchanged delivery shares its parent's decision records
(`decisions_from`); every query here resolves that, so callers see the records as the
version's own.
"""

from __future__ import annotations

from pymongo.database import Database

from pipeline.items import Stage, Status
from pipeline.provenance.ledger import BATCH

LAPSED = ["REVOKED", "EXPIRED"]


class VersionQueries:
    """Reads of a version's decisions; mixed into `Provenance`."""

    db: Database
    _origins: dict[str, tuple[str, dict]]

    def _origin(self, version: str) -> tuple[str, dict]:
        """(the version whose decision records `version` uses, what to stamp on them).
        A version made from an unchanged delivery shares its parent's decisions
        (`decisions_from`) instead of writing a copy of each; its readers get them stamped
        with its own version, run and date, as if they were its own."""
        if version not in self._origins:
            meta = self.db.versions.find_one(
                {"_id": version}, {"decisions_from": 1, "run_id": 1, "as_of": 1}
            )
            origin = (meta or {}).get("decisions_from")
            stamp = {}
            if origin:
                stamp = {"version": version, "run_id": meta["run_id"], "as_of": meta["as_of"]}
            self._origins[version] = (origin or version, stamp)
        return self._origins[version]

    def _own(self, version: str, docs):
        """Decision records of `version`'s origin, stamped as `version`'s."""
        origin, stamp = self._origin(version)
        for doc in docs:
            if stamp:
                doc.update(stamp)
                if doc.get("delivery") == f"{origin}/{doc.get('partner')}":
                    doc["delivery"] = f"{version}/{doc['partner']}"
                if doc["status"] == Status.ACCEPTED:
                    doc.update(stage=Stage.CARRIED, parent_shard=doc.get("shard"))
                elif doc.get("stage") == Stage.AUDIO:
                    doc.setdefault("verdict_from", origin)
            yield doc

    def sharing(self, origins: set[str]) -> set[str]:
        """Versions that use the decision records of one of `origins`."""
        if not origins:
            return set()
        query = {"decisions_from": {"$in": sorted(origins)}}
        return set(self.db.versions.distinct("_id", query))

    def count(self, version: str, status: str) -> int:
        origin, _ = self._origin(version)
        return self.db.decisions.count_documents({"version": origin, "status": status})

    def decisions_by_keys(self, version: str, keys: list[str]) -> list[dict]:
        origin, _ = self._origin(version)
        ids = [f"{origin}/{key}" for key in keys]
        found = {
            d["item_key"]: d
            for d in self._own(version, self.db.decisions.find({"_id": {"$in": ids}}))
        }
        return [found[key] for key in keys if key in found]

    def accepted_items(self, version: str) -> dict[str, dict]:
        query = {"version": self._origin(version)[0], "status": Status.ACCEPTED}
        found = self.db.decisions.find(query).batch_size(BATCH)
        return {d["item_key"]: d for d in self._own(version, found)}

    def audio_verdicts(self, version: str) -> dict[str, dict]:
        """Items of `version` refused by the audio stage or as duplicates, by item key."""
        query = {
            "version": self._origin(version)[0],
            "status": Status.REJECTED,
            "stage": {"$in": [Stage.AUDIO, Stage.DEDUP]},
        }
        found = self.db.decisions.find(query).batch_size(BATCH)
        return {d["item_key"]: d for d in self._own(version, found)}

    def decisions(
        self, version: str, statuses: tuple[str, ...] | None = None, stage: str | None = None
    ) -> list[dict]:
        query: dict = {"version": self._origin(version)[0]}
        if statuses:
            query["status"] = {"$in": list(statuses)}
        if stage:
            query["stage"] = stage
        found = self.db.decisions.find(query).sort("seq", 1).batch_size(BATCH)
        return list(self._own(version, found))

    def counts(self, version: str) -> tuple[int, dict[str, int], int, dict[str, dict]]:
        """(accepted items, rejections per reason code, rejected items, partner ->
        {accepted, rejected}) of `version`, counted by the server in one pass over its
        decisions: no decision travels to the client."""
        grouped = self.db.decisions.aggregate(
            [
                {"$match": {"version": self._origin(version)[0]}},
                {
                    "$group": {
                        "_id": {"p": "$partner", "s": "$status", "r": "$reasons"},
                        "n": {"$sum": 1},
                    }
                },
            ]
        )
        accepted = rejected_items = 0
        reasons: dict[str, int] = {}
        partners: dict[str, dict[str, int]] = {}
        for doc in grouped:
            status, count = doc["_id"]["s"], doc["n"]
            entry = partners.setdefault(doc["_id"]["p"], {"accepted": 0, "rejected": 0})
            if status in entry:
                entry[status] += count
            if status == Status.ACCEPTED:
                accepted += count
            elif status == Status.REJECTED:
                rejected_items += count
                for code in doc["_id"].get("r") or ():
                    reasons[code] = reasons.get(code, 0) + count
        by_reason, by_partner = dict(sorted(reasons.items())), dict(sorted(partners.items()))
        return accepted, by_reason, rejected_items, by_partner

    def trace(self, key: str) -> list[dict]:
        """Every decision about an item key (`partner:track_id`), or about every item an
        ISRC was delivered as (including its decisions where the record had none)."""
        isrc = key.replace("-", "").upper()
        keys = {key, *self.db.decisions.distinct("item_key", {"isrc": isrc})}
        found = list(self.db.decisions.find({"item_key": {"$in": sorted(keys)}}))
        shared = self.sharing({d["version"] for d in found})
        for version in sorted(shared):
            origin, _ = self._origin(version)
            found += self._own(version, [dict(d) for d in found if d["version"] == origin])
        return found

    def examples(self, version: str) -> dict:
        """One rejected and one accepted item key of `version`, for "try tracing this"."""
        found = {}
        for status in (Status.REJECTED, Status.ACCEPTED):
            doc = self.db.decisions.find_one(
                {"version": self._origin(version)[0], "status": status}, sort=[("seq", 1)]
            )
            if doc:
                found[f"example_{status}"] = doc["item_key"]
        return found

    def versions_holding(self, item_keys: list[str], besides: str) -> list[str]:
        """Committed versions other than `besides` whose rows include any of `item_keys`
        (asked in chunks, so no query grows with the number of keys)."""
        holding: set[str] = set()
        for start in range(0, len(item_keys), BATCH):
            chunk = item_keys[start : start + BATCH]
            query = {"item_key": {"$in": chunk}, "status": Status.ACCEPTED}
            holding.update(self.db.decisions.distinct("version", query))
        if not holding:
            return []
        holding |= self.sharing(holding)
        committed = self.db.versions.distinct(
            "_id", {"_id": {"$in": sorted(holding)}, "status": "committed"}
        )
        return sorted(v for v in committed if v != besides)

    def accepted_matching(self, version: str, revocations: list[dict]) -> list[dict]:
        """Accepted decisions of `version` that one of `revocations` names (its track, or
        its licence, of its partner)."""
        if not revocations:
            return []
        clauses = [
            {"partner": r["partner"], "track_id": r["track_id"]}
            if r.get("track_id")
            else {"partner": r["partner"], "license.id": r["license_id"]}
            for r in revocations
        ]
        query = {"version": self._origin(version)[0], "status": Status.ACCEPTED, "$or": clauses}
        return list(self._own(version, self.db.decisions.find(query).batch_size(BATCH)))

    def licence_removals(self, version: str) -> list[str]:
        """Items `version` refuses as revoked or expired: older versions holding them must
        not be trained on any more."""
        query = {
            "version": self._origin(version)[0],
            "status": Status.REJECTED,
            "reasons": {"$in": LAPSED},
        }
        return sorted(self.db.decisions.distinct("item_key", query))
