"""The work queue: which analysis batches and shard jobs a version has, and which are done.
Each step leaves a completion marker keyed by version, kind and number, so a re-run skips it."""

from __future__ import annotations

from pymongo import UpdateOne
from pymongo.database import Database

from pipeline.items import Stage, Status
from pipeline.provenance.ledger import BATCH, utc_now


class WorkQueue:
    """Steps and jobs of a version being built; mixed into `Provenance`."""

    db: Database

    def batch_items(self, version: str, batch: int) -> list[dict]:
        query = {"version": version, "batch": batch, "status": Status.LICENSED}
        return list(self.db.decisions.find(query).sort("seq", 1).batch_size(BATCH))

    def step_done(self, version: str, kind: str, number: int) -> dict | None:
        """The completion marker of one mapped step (`analyse` batch or `write` job)."""
        return self.db.steps.find_one({"_id": f"{version}/{kind}/{number}"})

    def mark_step_done(self, version: str, kind: str, number: int, summary: dict) -> None:
        self.db.steps.update_one(
            {"_id": f"{version}/{kind}/{number}"},
            {
                "$set": {
                    "version": version,
                    "kind": kind,
                    "number": number,
                    "summary": summary,
                    "at": utc_now(),
                }
            },
            upsert=True,
        )

    def steps(self, version: str, kind: str) -> list[dict]:
        return list(self.db.steps.find({"version": version, "kind": kind}).sort("number", 1))

    def forget_step(self, version: str, kind: str, number: int) -> None:
        """Mark a step as not done, so the next run does it again."""
        self.db.steps.delete_one({"_id": f"{version}/{kind}/{number}"})

    def reset_layout(self, version: str) -> None:
        """Undo `dedup`'s layout and the shards written from it, keeping every analysis:
        items packed into this version's new shards go back to analysed, and `dedup` lays
        the version out again."""
        self.db.decisions.update_many(
            {"version": version, "status": Status.ACCEPTED, "parent_shard": None},
            {"$set": {"status": Status.ANALYSED, "stage": Stage.AUDIO, "shard": None}},
        )
        self.db.steps.delete_many({"version": version, "kind": "write"})
        self.db.jobs.delete_many({"version": version})
        self.db.shards.update_many({"versions": version}, {"$pull": {"versions": version}})
        self.db.versions.update_one(
            {"_id": version},
            {"$set": {"jobs_planned": False, "job_count": 0, "reused_shards": []}},
        )

    def save_jobs(self, version: str, jobs: list[dict]) -> None:
        ops = [
            UpdateOne(
                {"_id": f"{version}/{n}"},
                {"$set": {**job, "version": version, "number": n}},
                upsert=True,
            )
            for n, job in enumerate(jobs)
        ]
        if ops:
            self.db.jobs.bulk_write(ops, ordered=False)

    def job(self, version: str, number: int) -> dict:
        job = self.db.jobs.find_one({"_id": f"{version}/{number}"})
        if job is None:
            raise LookupError(f"version {version} has no shard job {number}")
        return job

    def jobs(self, version: str) -> list[dict]:
        return list(self.db.jobs.find({"version": version}).sort("number", 1))
