"""Commit: write the version manifest last. Before it exists the version does not."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from pymongo.errors import PyMongoError

from pipeline.config import Settings
from pipeline.items import PENDING
from pipeline.provenance.ledger import utc_now
from pipeline.refresh.common import step
from pipeline.shards.manifest import build_manifest, dump, load_manifest, manifest_key
from pipeline.storage import ObjectExists, ObjectNotFound

# Revocations are stamped by the clock of whoever records them: allow for clocks that differ.
CLOCK_SKEW = timedelta(hours=1)


class IncompleteVersion(RuntimeError):
    """A step was asked to go on while earlier work of the version is not done."""


class CommittedFollowUpFailed(RuntimeError):
    """The manifest is written, so the version exists; what provenance records of it after
    that did not finish. The next plan finishes it (`finish_lost_commits`)."""


def commit(settings: Settings, version: str) -> dict:
    """Write the manifest once every job is done; returns the run summary (idempotent)."""
    with step(settings, version) as s:
        key = manifest_key(version)
        if not s.store.exists(key):
            _check_complete(s)
            _check_revocations(s)
            parent_manifest = (
                load_manifest(s.store, s.meta["parent"]) if s.meta.get("parent") else {"shards": []}
            )
            if s.meta.get("decisions_from"):
                counts = parent_manifest["counts"]
                accepted, rejected = counts["accepted"], counts["rejected"]
                rejected_items, by_partner = counts["rejected_items"], counts.get("by_partner")
            else:
                accepted, rejected, rejected_items, by_partner = s.prov.counts(version)
            reused = [
                sh for sh in parent_manifest["shards"] if sh["path"] in set(s.meta["reused_shards"])
            ]
            steps = [d for d in s.prov.steps(version, "write") if d["summary"]["shard"]]
            written = [d["summary"]["shard"] for d in steps]
            _check_shards(
                s,
                [
                    *((sh, None) for sh in reused),
                    *((d["summary"]["shard"], d["number"]) for d in steps),
                ],
            )
            manifest = build_manifest(
                version=version,
                run_id=s.meta["run_id"],
                as_of=date.fromisoformat(s.meta["as_of"]),
                parent=s.meta.get("parent"),
                policy=s.meta["policy"],
                policy_hash=s.meta["policy_hash"],
                descriptor_set=s.meta["descriptor_set"],
                shards=reused + written,
                accepted=accepted,
                rejected=rejected,
                rejected_items=rejected_items,
                partners=s.meta["partners"],
                validation=s.meta.get("validation"),
                by_partner=by_partner,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                changes={
                    "reused_shards": len(reused),
                    "written_shards": len(written),
                    "dropped_shards": len(parent_manifest["shards"])
                    - len(reused)
                    - sum(1 for d in s.prov.jobs(version) if d["kind"] == "rewrite"),
                    "duplicates": s.meta.get("duplicates", 0),
                },
            )
            try:
                s.store.put(key, dump(manifest), content_type="application/json")
            except ObjectExists:
                pass
        manifest = json.loads(s.store.get(key))
        try:
            s.prov.upsert_version(
                version,
                status="committed",
                follow_up="pending",
                committed_at=manifest["created_at"],
                manifest=s.store.url(key),
                counts=manifest["counts"],
            )
            s.prov.update_items(version)
            s.prov.record_event(
                s.meta["run_id"],
                "committed",
                version=version,
                policy_hash=s.meta["policy_hash"],
                counts=manifest["counts"],
            )
            if not s.meta.get("decisions_from"):
                removals = s.prov.licence_removals(version)
                for old in s.prov.withdraw_versions_holding(removals, version):
                    s.prov.record_event(
                        s.meta["run_id"], "version-withdrawn", subject=old, by=version
                    )
            examples = s.meta.get("examples")
            if examples is None:
                examples = s.prov.examples(version)
                s.prov.upsert_version(version, examples=examples)
            s.prov.upsert_version(version, follow_up="done")
        except PyMongoError as exc:
            raise CommittedFollowUpFailed(
                f"version {version} is committed (its manifest {s.store.url(key)} is written), "
                f"but recording it in provenance failed ({type(exc).__name__}: {exc}); "
                "the next refresh or takedown finishes it"
            ) from exc
        return {**summary(manifest, s.store.url(key)), **examples}


def finish_lost_commits(settings: Settings, prov, store) -> list[str]:
    """Versions whose manifest exists while provenance still says `building`, or whose
    follow-up is still `pending`: a commit that lost its last writes. The manifest is the
    commit point, so their follow-up is finished (idempotently) before a new version is
    built on the latest one."""
    lost = [
        v["_id"]
        for v in prov.versions()
        if v.get("planned")
        and (
            (v.get("status") == "building" and store.exists(manifest_key(v["_id"])))
            or v.get("follow_up") == "pending"
        )
    ]
    for version in lost:
        commit(settings, version)
    return lost


def _check_complete(s) -> None:
    version = s.version
    if not s.meta.get("jobs_planned"):
        raise IncompleteVersion(f"version {version}: dedup and shard layout not done")
    missing = [j for j in range(s.meta["job_count"]) if not s.prov.step_done(version, "write", j)]
    if missing:
        raise IncompleteVersion(f"version {version}: shard jobs {missing} are not done")
    left = {status: s.prov.count(version, status) for status in PENDING}
    if any(left.values()):
        raise IncompleteVersion(f"version {version}: items still pending: {left}")


def _check_revocations(s) -> None:
    """A revocation recorded after `dedup` laid the version out never lands in it: the items
    it removes are refused, the layout is reset (shared records are given up, so the plan is
    made again), and the commit waits for the next run."""
    from pipeline.refresh.dedup import late_revocations

    as_of = date.fromisoformat(s.meta["as_of"])
    since = (s.meta.get("revocations_read_at") or s.meta["created_at"]) - CLOCK_SKEW
    in_effect = s.prov.revocations(s.policy.needed_until(as_of).isoformat())
    recent = [r for r in in_effect if (r.get("recorded_at") or since) >= since]
    refused = late_revocations(s, s.prov.accepted_matching(s.version, recent), in_effect)
    if not refused:
        return
    keys = ", ".join(sorted(d["item_key"] for d in refused))
    if s.meta.get("decisions_from"):
        s.prov.discard_version(s.version, untouched_since=utc_now() + CLOCK_SKEW)
        then = "its plan is discarded and made again"
    else:
        s.prov.reset_layout(s.version)  # first: if this stops here, dedup refuses them again
        s.prov.upsert_decisions(refused, s.attempt)
        then = "they are refused and the shards are laid out again"
    raise IncompleteVersion(
        f"version {s.version} not committed: {keys} revoked while it was built; {then}. "
        "Run the refresh again."
    )


def _check_shards(s, shards: list[tuple[dict, int | None]]) -> None:
    """Every shard the manifest will name is in the store as recorded (size and CRC32C).
    One this version wrote that is not (removed by `corpus gc` meanwhile, or damaged) has its
    job reset, so the next run writes it again; a parent's is reported and left alone."""
    broken = []
    for shard, job in shards:
        problem = _shard_problem(s.store, shard, written=job is not None)
        if problem is None:
            continue
        if job is None:
            broken.append(f"shard {shard['path']} of the parent version {problem}")
        else:
            s.prov.forget_step(s.version, "write", job)
            s.prov.detach_shard(shard["path"], s.version)
            broken.append(f"shard {shard['path']} {problem}; its job is reset")
    if broken:
        raise IncompleteVersion(
            f"version {s.version} not committed: " + "; ".join(broken) + ". Run the refresh "
            "again to write reset jobs; run `corpus verify` on a parent with broken shards."
        )


def _shard_problem(store, shard: dict, written: bool) -> str | None:
    """What is wrong with a shard in the store, if anything. One this version wrote is read
    again; a reused one is checked from the store's metadata (CRC32C where it keeps one)."""
    try:
        found = store.stat(shard["path"]) if written else store.info(shard["path"])
    except ObjectNotFound:
        return "is missing from the store"
    if written and shard["path"] != f"shards/{found.sha256}.parquet":
        return f"holds bytes whose sha256 is {found.sha256}, not the one its name says"
    crc32c = found.crc32c or shard["crc32c"]
    if (found.size, crc32c) != (shard["bytes"], shard["crc32c"]):
        return (
            f"has {found.size} bytes, CRC32C {found.crc32c}; "
            f"recorded {shard['bytes']} bytes, CRC32C {shard['crc32c']}"
        )
    return None


def summary(manifest: dict, manifest_url: str) -> dict:
    counts = manifest["counts"]
    return {
        "version": manifest["version"],
        "accepted": counts["accepted"],
        "rejected": counts["rejected"],
        "rejected_items": counts["rejected_items"],
        "shards": len(manifest["shards"]),
        "rows": counts["rows"],
        "by_partner": counts.get("by_partner", {}),
        "manifest": manifest_url,
        "as_of": manifest["as_of"],
        "parent": manifest["parent"],
        "changes": manifest.get("changes", {}),
        "validation": {
            partner: report.get("page") or report.get("docs")
            for partner, report in manifest.get("validation", {}).items()
        },
    }
