"""The `corpus` command: the same code the `corpus_refresh` DAG runs, from a terminal."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import click
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pipeline.config import Settings
from pipeline.items import Status

console = Console(stderr=True)


def _stdout() -> Console:
    """Results go here. Piped into another program, output is never cut to 80 columns."""
    result = Console(soft_wrap=True)
    if not result.is_terminal:
        result.width = PIPED_WIDTH
    return result


PIPED_WIDTH = 10_000
out = _stdout()


def _print_table(table: Table, *identifiers: int) -> None:
    """Identifier columns (versions, item keys, partners) are never folded or cut: they keep
    their full width, and the other columns wrap around them down to their header's width.
    A terminal too narrow even for that gets the table at the width it needs (its lines then
    wrap on screen) rather than a table with cut identifiers."""
    for index, column in enumerate(table.columns):
        header = cell_len(Text.from_markup(str(column.header)).plain)
        if index in identifiers:
            cells = [cell_len(Text.from_markup(str(c)).plain) for c in column.cells]
            column.no_wrap = True
            column.min_width = max([header, *cells])
        else:
            column.min_width = max(column.min_width or 0, header)
    needed = Measurement.get(out, out.options, table).minimum
    out.print(table, width=max(out.width, needed))


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    sys.exit(1)


class CorpusGroup(click.Group):
    """Turns a failure of MongoDB, the object store or the disk into one line that says
    what failed and what to do, instead of a traceback. Every step is resumable and a
    version exists only once its manifest does, so running the command again is safe."""

    def invoke(self, ctx: click.Context):
        from pymongo.errors import OperationFailure, PyMongoError

        from pipeline.storage import StoreError

        try:
            return super().invoke(ctx)
        except OperationFailure as exc:
            if exc.code == 13:
                _fail(
                    f"the MongoDB user of CORPUS_MONGO_URI may not do this "
                    f"({exc.details.get('errmsg', exc) if exc.details else exc}); "
                    "read-only users can run trace, versions, show, verify and audit"
                )
            _fail(_explain(exc))
        except (PyMongoError, StoreError, OSError) as exc:
            _fail(_explain(exc))


def _explain(exc: BaseException) -> str:
    """One line: what failed, and what to do about it."""
    import errno

    from pymongo.errors import PyMongoError

    from pipeline.storage import StoreError

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, PyMongoError):
        return (
            f"MongoDB failed ({type(exc).__name__}: {text[:300]}); check that the server of "
            "CORPUS_MONGO_URI (or the embedded store) is up, then run the command again: "
            "nothing is committed half-way"
        )
    if isinstance(exc, StoreError):
        return f"the object store failed ({text[:300]}); run the command again when it answers"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on the device ({text}); free some space and run the command again"
    return text


@click.group(cls=CorpusGroup)
@click.version_option(package_name="ethical-corpus")
def main() -> None:
    """Build AI-training audio corpora only from audio licensed for it, and keep the proof."""


@main.command()
@click.option(
    "--partners",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Partners file (YAML). Default: $CORPUS_PARTNERS.",
)
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Corpus policy (YAML). Default: the strict built-in policy.",
)
@click.option("--store", help="gs://bucket/prefix or a folder. Default: $CORPUS_STORE.")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Logical date licences are judged at (default: today, UTC).",
)
@click.option("--batch-size", type=click.IntRange(1, 5000), help="Items per shard batch.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, nothing else.")
def refresh(partners, policy, store, as_of, batch_size, as_json) -> None:
    """Pull the partner catalogs, decide licences, and commit a new corpus version."""
    from pipeline.refresh import run_refresh

    settings = Settings.from_env(
        partners=partners, policy=policy, store=store, batch_size=batch_size
    )
    as_of_date: date | None = as_of.date() if as_of else None
    try:
        if as_json:
            result = run_refresh(settings, as_of=as_of_date)
            out.print_json(json.dumps(result))
            return
        result = _refresh_with_progress(settings, as_of_date)
    except (ValueError, LookupError, RuntimeError, OSError) as exc:
        _fail(_explain(exc))
    _print_summary(result, _connectors(settings, result["version"]))


def _refresh_with_progress(settings: Settings, as_of: date | None) -> dict:
    from pipeline.refresh import run_refresh

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("reading catalogs", total=None)

        def on_plan(plan) -> None:
            bar.update(task, description=f"audio → shards ({plan.version})", total=plan.licensed)

        def on_item(_key: str) -> None:
            bar.advance(task)

        return run_refresh(settings, as_of=as_of, progress=on_item, on_plan=on_plan)


def _connectors(settings: Settings, version: str) -> dict[str, str]:
    """Partner id -> connector type, as provenance recorded them for the version."""
    from pipeline.provenance import connect

    prov = connect(settings, write=False)
    try:
        return prov.connectors(version)
    finally:
        prov.close()


def _print_summary(result: dict, connectors: dict[str, str] | None = None) -> None:
    table = Table(title=f"corpus version {result['version']}", show_header=False)
    table.add_row("logical date", result["as_of"])
    table.add_row("accepted tracks", f"[green]{result['accepted']}[/green]")
    table.add_row("rejected tracks", f"[red]{result['rejected_items']}[/red]")
    for partner, counts in (result.get("by_partner") or {}).items():
        connector = (connectors or {}).get(partner)
        table.add_row(
            f"  partner {partner}" + (f" ({connector})" if connector else ""),
            f"{counts['accepted']} accepted, {counts['rejected']} rejected",
        )
    table.add_section()
    table.add_row("rejections by reason", "")
    for reason, count in result["rejected"].items():
        table.add_row(f"  {reason}", str(count))
    table.add_section()
    table.add_row("shards", f"{result['shards']} ({result['rows']} rows)")
    changes = result.get("changes") or {}
    if result.get("parent"):
        table.add_row("parent version", result["parent"])
        table.add_row(
            "  shards reused / written / dropped",
            f"{changes.get('reused_shards', 0)} / {changes.get('written_shards', 0)}"
            f" / {changes.get('dropped_shards', 0)}",
        )
    table.add_row("shards in", result["manifest"].rsplit("/versions/", 1)[0] + "/shards/")
    if "seconds" in result:
        table.add_row("seconds", str(result["seconds"]))
    _print_table(table, 0, 1)
    out.print(f"Manifest: {result['manifest']}", soft_wrap=True)
    for partner, page in (result.get("validation") or {}).items():
        out.print(f"Metadata validation ({partner}): {page}", soft_wrap=True)
    if result.get("example_rejected"):
        out.print(f"Trace a rejected track:  corpus trace {result['example_rejected']}")
    if result.get("example_accepted"):
        out.print(f"Trace an accepted track: corpus trace {result['example_accepted']}")


@main.command()
@click.argument("version", required=False)
@click.option("--json", "as_json", is_flag=True)
def show(version: str | None, as_json: bool) -> None:
    """Summary of one committed version (default: the latest)."""
    from pipeline.versions import version_summary

    settings = Settings.from_env()
    result = version_summary(settings, version)
    if result is None:
        _fail(f"no committed version {version!r}" if version else "no committed version yet")
    if as_json:
        out.print_json(json.dumps(result))
        return
    _print_summary(result, _connectors(settings, result["version"]))


@main.command()
@click.option("--json", "as_json", is_flag=True)
def versions(as_json: bool) -> None:
    """List committed corpus versions (a version exists iff its manifest does)."""
    from pipeline.shards.manifest import DamagedManifest
    from pipeline.versions import list_versions

    try:
        rows = list_versions(Settings.from_env())
    except DamagedManifest as exc:
        _fail(f"{exc}; `corpus verify` reports every version")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(
        "version", "logical date", "accepted", "rejected", "shards", "parent", "withdrawn by"
    )
    for row in rows:
        table.add_row(
            row["version"],
            row["as_of"],
            str(row["accepted"]),
            str(row["rejected_items"]),
            str(row["shards"]),
            row["parent"] or "",
            f"[red]{row['withdrawn_by']}[/red]" if row["withdrawn_by"] else "",
        )
    _print_table(table, 0, 5, 6)


@main.command()
@click.option("--partner", help="Only this partner's deliveries.")
@click.option("--json", "as_json", is_flag=True)
def deliveries(partner: str | None, as_json: bool) -> None:
    """List partner deliveries as runs read them, oldest first, and which were unchanged."""
    from pipeline.versions import list_deliveries

    rows = list_deliveries(Settings.from_env(), partner)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table(
        "read at", "version", "partner", "connector", "records", "invalid", "refused", "digest"
    )
    for row in rows:
        same = f" (same as {row['same_as']})" if row["same_as"] else ""
        table.add_row(
            f"{row['read_at']:%Y-%m-%d %H:%M}",
            row["version"],
            row["partner"],
            row["connector"],
            str(row["records"]),
            str(row["invalid"]),
            str(row["refused_at_licence"]),
            row["digest"][:12] + same,
        )
    _print_table(table, 1, 2)


@main.command()
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
def trace(key: str, as_json: bool) -> None:
    """One track's whole history: deliveries, licence versions, decisions and reasons, audio
    checksum, shard row, the versions holding it, revocations. KEY is partner:track_id or an
    ISRC."""
    from pipeline.versions import trace_item

    histories = trace_item(Settings.from_env(), key)
    if not histories:
        _fail(f"no record of {key!r} in any run")
    if as_json:
        out.print_json(json.dumps(histories, default=str))
        return
    for history in histories:
        _print_history(history)


def _print_history(h: dict) -> None:
    artists = ", ".join(h["artists"]) or "-"
    out.print(
        f"[bold]{h['item_key']}[/bold]  {h['title'] or '-'!r} by {artists}  ISRC {h['isrc'] or '-'}"
    )
    current = h["current"]
    if current:
        where = "since" if current.get("current") else "not in the latest version; last changed in"
        state = current["status"].upper() + (
            f" ({', '.join(current['reasons'])})" if current.get("reasons") else ""
        )
        out.print(f"  now        {state}, {where} version {current['version']}")
    audio = h["audio"]
    if audio["sha256"]:
        out.print(
            f"  audio      sha256 {audio['sha256']} ({audio['bytes']} bytes) from "
            f"{audio['location']}; descriptor set {audio['descriptor_set']}",
            highlight=False,
        )
    for shard in h["shards"]:
        out.print(f"  shard      {shard['path']} row {shard['row']}", highlight=False)
    if h["in_versions"]:
        held = [v["version"] + (" (withdrawn)" if v["withdrawn"] else "") for v in h["in_versions"]]
        out.print(f"  in versions {', '.join(held)}")
    out.print("[bold]deliveries[/bold]")
    for d in h["deliveries"]:
        out.print(
            f"  {d['version']}  {d['partner']} ({d['connector']}) {d['location']}"
            f"  record {d.get('source') or '-'}",
            highlight=False,
        )
    out.print("[bold]licences[/bold]")
    for entry in h["licences"]:
        out.print(f"  from {entry['from_version']}: {_licence_line(entry['license'])}")
    if h["revocations"]:
        out.print("[bold]revocations[/bold]")
        for r in h["revocations"]:
            target = f"track {r['track_id']}" if r.get("track_id") else f"licence {r['license_id']}"
            out.print(
                f"  {target} from {r['effective']} by {r['actor']}: {r['reason']}", highlight=False
            )
    if h["events"]:
        out.print("[bold]events[/bold]")
        for e in h["events"]:
            when = f"{e['at']:%Y-%m-%d %H:%M}"
            out.print(f"  {when} {e['kind']} in run {e['run_id']} by {e['actor']}")
    out.print("[bold]decisions[/bold]")
    for rec in h["decisions"]:
        _print_decision(rec)
    out.print()


def _licence_line(licence: dict) -> str:
    validity = f"{licence.get('valid_from') or '…'} to {licence.get('valid_until') or '…'}"
    return (
        f"{licence.get('id')}; uses {', '.join(licence.get('uses') or []) or '-'}"
        f"; territories {', '.join(licence.get('territories') or []) or '-'}"
        f"; valid {validity}"
    )


def _print_decision(rec: dict) -> None:
    licence = rec.get("license") or {}
    accepted = rec["status"] == Status.ACCEPTED
    state = "[green]ACCEPTED[/green]" if accepted else f"[red]{rec['status'].upper()}[/red]"
    committed = "committed" if rec["committed"] else "not committed"
    if rec.get("withdrawn"):
        committed += ", withdrawn"
    out.print(
        f"  version {rec['version']} ({committed}), logical date {rec['as_of']}, "
        f"policy {rec['policy_hash'][:12]}"
    )
    out.print(f"    decision  {state} at the {rec['stage']} stage")
    if licence:
        out.print(f"    licence   {_licence_line(licence)}")
    for message in rec.get("messages") or []:
        out.print(f"    reason    {message}", highlight=False)
    if rec.get("shard"):
        out.print(f"    shard     {rec['shard']}")


@main.command()
@click.option("--version", "version", help="Version to verify (default: every committed one).")
def verify(version: str | None) -> None:
    """Re-read committed versions and prove they hold only admitted audio (exit 1 if not)."""
    from pipeline.audit.verify import verify as verify_version
    from pipeline.shards.manifest import manifest_versions
    from pipeline.storage import open_store

    settings = Settings.from_env()
    targets = [version] if version else manifest_versions(open_store(settings.store))
    if not targets:
        _fail("no committed version to verify")
    failed = False
    for target in targets:
        violations = verify_version(settings, target)
        if violations:
            failed = True
            out.print(f"[red]FAIL[/red] {target}: {len(violations)} violation(s)")
            for violation in violations:
                out.print(f"  {violation}", highlight=False)
        else:
            out.print(f"[green]OK[/green]   {target}")
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--partner", required=True, help="Partner id, as in the partners file.")
@click.option("--track", "track_id", help="Track id to revoke.")
@click.option("--license", "license_id", help="Licence id to revoke for every track under it.")
@click.option("--reason", required=True, help="Why, for the audit trail.")
@click.option(
    "--effective",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day the revocation applies (default: today, UTC).",
)
@click.option(
    "--actor", envvar="USER", default="unknown", show_default="$USER", help="Who asked for it."
)
def revoke(partner, track_id, license_id, reason, effective, actor) -> None:
    """Record a revocation; the next refresh or takedown removes what it names."""
    from datetime import UTC, datetime

    from pipeline.licensing.revocations import describe, new_revocation
    from pipeline.provenance import connect

    day = effective.date() if effective else datetime.now(UTC).date()
    try:
        revocation = new_revocation(partner, track_id, license_id, reason, actor, day)
    except ValueError as exc:
        _fail(str(exc))
    prov = connect(Settings.from_env())
    try:
        new = prov.record_revocation(revocation)
    finally:
        prov.close()
    target = describe(revocation)
    day = revocation["effective"]
    verb = "recorded" if new else "already recorded"
    out.print(
        f"revocation of {target} from {day} {verb}; run `corpus takedown` to publish a "
        "version without it"
    )


@main.command()
@click.option(
    "--horizon-days",
    type=click.IntRange(0),
    default=7,
    show_default=True,
    help="Also remove licences that lapse within this many days (next refresh).",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Logical date (default: today, UTC).",
)
@click.option("--json", "as_json", is_flag=True)
def takedown(horizon_days: int, as_of, as_json: bool) -> None:
    """Publish a version without revoked or expiring items; mark older versions withdrawn."""
    from pipeline.refresh import run_takedown

    try:
        result = run_takedown(
            Settings.from_env(), as_of=as_of.date() if as_of else None, horizon_days=horizon_days
        )
    except (ValueError, LookupError, RuntimeError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps(result))
        return
    _print_summary(result)
    for old in result["withdrawn"]:
        out.print(f"withdrawn: version {old} holds removed items")


@main.command()
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option(
    "--grace-hours",
    type=float,
    default=24.0,
    show_default=True,
    help="Keep objects written, and versions still being built, within this many hours.",
)
def gc(dry_run: bool, grace_hours: float) -> None:
    """Remove shard objects no committed version references, and versions that never
    committed (records, decisions, runs/<version>/ objects)."""
    from pipeline.shards.gc import collect_garbage, collect_leftovers

    settings = Settings.from_env()
    garbage = collect_garbage(settings, dry_run=dry_run, grace_hours=grace_hours)
    leftovers = collect_leftovers(settings, dry_run=dry_run, grace_hours=grace_hours)
    verb = "would remove" if dry_run else "removed"
    for key in [*garbage, *leftovers.objects]:
        out.print(f"{verb} {key}")
    discarded = "would discard" if dry_run else "discarded"
    for version in leftovers.versions:
        out.print(f"{discarded} version {version} (never committed)")
    out.print(
        f"{verb} {len(garbage)} unreferenced shard(s) and {len(leftovers.objects)} run object(s); "
        f"{len(leftovers.versions)} uncommitted version(s)"
    )


@main.command()
@click.option("--version", "version", help="Version to audit (default: the latest).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.html and the CSV/JSON exports "
    "(default: $CORPUS_HOME/audits/<version>).",
)
@click.option("--expiring-days", type=click.IntRange(0), default=90, show_default=True)
@click.option("--publish", is_flag=True, help="Also keep the report in the store.")
def audit(version, out_dir, expiring_days, publish) -> None:
    """Write the audit report of a version (HTML with charts, CSV, JSON, summary)."""
    from pipeline.audit.publish import audit_version, resolve_version

    settings = Settings.from_env()
    try:
        version = resolve_version(settings, version)
        out_dir = out_dir or settings.home / "audits" / version
        result = audit_version(settings, version, out_dir.resolve(), publish, expiring_days)
    except (LookupError, OSError) as exc:
        _fail(str(exc))
    out.print(f"audit report of {result['version']}: {result['report']}")
    if result.get("published"):
        out.print(f"kept in the store: {result['published']}")


@main.command()
@click.option("--version", "version", help="Version (default: the latest).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of Markdown.")
def attribution(version: str | None, as_csv: bool) -> None:
    """The attribution list CC BY and contract terms require, for one version."""
    from pipeline.audit.attribution import attribution_csv, attribution_markdown
    from pipeline.audit.publish import resolve_version, version_facts

    settings = Settings.from_env()
    try:
        version = resolve_version(settings, version)
    except LookupError as exc:
        _fail(str(exc))
    _, decisions, _, _ = version_facts(settings, version)
    text = attribution_csv(decisions) if as_csv else attribution_markdown(decisions, version)
    click.echo(text, nl=False)


@main.group()
def services() -> None:
    """The embedded MongoDB-wire store, and the services plugins add (the demo's feed
    server), shared by the CLI and Airflow tasks."""


def _plugins(group: str) -> list:
    """What installed packages plug into `corpus` (entry-point `group`), loaded in name order."""
    from importlib.metadata import entry_points

    return [point.load() for point in sorted(entry_points(group=group), key=lambda p: p.name)]


@services.command("start")
def services_start() -> None:
    """Start the embedded store and every plugged-in service that has something to serve."""
    from pipeline.provenance.embedded import ensure_server

    home = Settings.from_env().home
    out.print(ensure_server(home))
    for service in _plugins("corpus.services"):
        address = service.start(home)
        if address:
            out.print(f"{service.name}: {address}")


@services.command("stop")
def services_stop() -> None:
    """Stop the embedded store and every plugged-in service."""
    from pipeline.provenance.embedded import stop_server

    home = Settings.from_env().home
    stopped = stop_server(home)
    out.print(f"embedded store: {'stopped' if stopped else 'not running'}")
    for service in _plugins("corpus.services"):
        out.print(f"{service.name}: {'stopped' if service.stop(home) else 'not running'}")


for _command in _plugins("corpus.commands"):
    main.add_command(_command)
