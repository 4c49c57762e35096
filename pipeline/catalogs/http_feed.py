"""Paginated HTTP JSON feed connector: pages by cursor, next-page URL or page number.

Every request has a timeout; 429 and 5xx answers and transport errors are retried with
exponential backoff (a `Retry-After` header, in seconds or as a date, is honoured, capped by
the mapping). The bearer token comes from the partner's credential reference and is only
ever sent to the feed's own origin: a next-page URL elsewhere is refused, and redirects are
not followed. Plain http is accepted for loopback hosts only (local tests).

A feed that cannot be read to the end raises FeedError instead of yielding a partial
delivery, since a short delivery would look like items removed by the partner. Items are
manifest records, or become them through the mapping's `fields` (target dotted path ->
item dotted path); relative audio URLs are resolved against the page, and audio on a host
outside `allowed_audio_hosts` makes that item invalid.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urljoin, urlparse

from pipeline.audio.fetch import LOOPBACK, host_allowed
from pipeline.catalogs.credentials import resolve_secret
from pipeline.catalogs.models import InvalidRecord, RawRecord
from pipeline.catalogs.normalise import usable_id
from pipeline.catalogs.partners import Credentials, HttpMapping
from pipeline.catalogs.strict_json import RecordError, parse, problems

OPTIONS = ("mapping", "credentials", "allowed_audio_hosts")

FIELDS = ("track_id", "isrc", "title", "artists", "audio", "sha256", "license")
LIST_FIELDS = ("artists", "license.uses", "license.territories", "license.excluded_territories")
MISSING = object()


class FeedError(RuntimeError):
    """The feed cannot be read to its end; the message names the URL, never the token."""


class Transient(Exception):
    """A failure worth retrying (429, 5xx, transport error)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def read(
    partner: str,
    location: str,
    mapping: HttpMapping | None = None,
    credentials: Credentials | None = None,
    allowed_audio_hosts: list[str] | tuple[str, ...] = (),
) -> Iterator[RawRecord | InvalidRecord]:
    """One raw record per feed item, pages in order, each page requested until it succeeds."""
    import httpx

    mapping = mapping or HttpMapping()
    parsed = urlparse(location)
    if parsed.scheme != "https" and not (parsed.scheme == "http" and parsed.hostname in LOOPBACK):
        raise FeedError(f"{location}: a feed must be https:// (plain http only on loopback)")
    headers = {"Accept": "application/json"}
    if credentials is not None:
        headers["Authorization"] = f"Bearer {resolve_secret(credentials)}"
    number = 0
    with httpx.Client(
        headers=headers, timeout=httpx.Timeout(mapping.timeout_s), follow_redirects=False
    ) as client:
        for page_url, items in _pages(client, location, mapping):
            for index, item in enumerate(items):
                number += 1
                source = f"{page_url}#/{mapping.items_field}/{index}"
                try:
                    yield _item(
                        partner, location, page_url, source, number, item, mapping,
                        allowed_audio_hosts,
                    )  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - one item is invalid, the feed goes on
                    yield InvalidRecord(
                        partner=partner,
                        track_id=f"#item-{number}",
                        source=source,
                        message=f"item cannot be read: {type(exc).__name__}: {exc}"[:500],
                    )


def _item(partner, location, page_url, source, number, item, mapping, allowed_audio_hosts):
    if not isinstance(item, dict):
        return InvalidRecord(
            partner=partner,
            track_id=f"#item-{number}",
            source=source,
            message="a feed item must be a JSON object",
            raw=str(item)[:500],
        )
    found = problems(item)
    named = usable_id(dig(item, mapping.fields.get("track_id", "track_id")))
    if found:
        return InvalidRecord(
            partner=partner,
            track_id=named or f"#item-{number}",
            source=source,
            message="; ".join(found),
        )
    record = to_record(item, mapping)
    audio = record.get("audio")
    if isinstance(audio, str) and audio:
        record["audio"] = audio = urljoin(page_url, audio)
        if not host_allowed(audio, allowed_audio_hosts):
            return InvalidRecord(
                partner=partner,
                track_id=usable_id(record.get("track_id")) or f"#item-{number}",
                source=source,
                message=f"audio host {urlparse(audio).netloc!r} is not in allowed_audio_hosts",
                raw=record,
            )
    return RawRecord(partner=partner, root=location, source=source, line=number, data=record)


def to_record(item: dict, mapping: HttpMapping) -> dict:
    """A manifest record from a feed item: same-named fields, then the mapped ones."""
    record = {name: item[name] for name in FIELDS if name in item}
    if isinstance(record.get("license"), dict):
        record["license"] = dict(record["license"])
    for target, source in mapping.fields.items():
        value = dig(item, source)
        if value is not MISSING:
            _put(record, target, value)
    for name in LIST_FIELDS:
        value = dig(record, name)
        if isinstance(value, str):
            _put(record, name, [value])
    if isinstance(record.get("track_id"), int) and not isinstance(record["track_id"], bool):
        record["track_id"] = str(record["track_id"])
    return record


def dig(data: object, path: str) -> object:
    """The value at a dotted path (`a.b.0.c`), or MISSING."""
    for part in path.split(".") if path else []:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return MISSING
    return data


def _put(record: dict, path: str, value: object) -> None:
    *parents, last = path.split(".")
    node = record
    for part in parents:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[last] = value


def _pages(client, location: str, mapping: HttpMapping) -> Iterator[tuple[str, list]]:
    paging = mapping.pagination
    origin = _origin(location)
    url, cursor, page = location, None, paging.first_page
    base = {paging.page_size_param: paging.page_size} if paging.page_size_param else {}
    seen: set[tuple] = set()
    for _ in range(paging.max_pages):
        params = {k: v for k, v in base.items() if v is not None}
        if paging.style == "page":
            params[paging.page_param] = page
        elif paging.style == "cursor" and cursor is not None:
            params[paging.cursor_param] = cursor
        page_url, body = get_json(client, url, params, mapping)
        items = dig(body, mapping.items_field)
        if not isinstance(items, list):
            raise FeedError(f"{page_url}: no list at {mapping.items_field!r} in the page")
        yield page_url, items
        if paging.style == "none":
            return
        if paging.style == "page":
            if not items or (paging.page_size and len(items) < paging.page_size):
                return
            page += 1
            continue
        following = dig(body, paging.next_field)
        if problems(following):
            raise FeedError(f"{page_url}: the next-page field cannot be read")
        if following in (MISSING, None, "", False):
            return
        if isinstance(following, str) and following.startswith(("http://", "https://", "/")):
            url, cursor, base = urljoin(page_url, following), None, {}
            if _origin(url) != origin:
                raise FeedError(f"{page_url}: next page {url} is on another origin; refused")
        else:
            cursor = str(following)
        if (url, cursor) in seen:
            raise FeedError(f"{page_url}: the feed repeats a page; stopping")
        seen.add((url, cursor))
    raise FeedError(f"{location}: more than {paging.max_pages} pages")


def get_json(client, url: str, params: dict, mapping: HttpMapping) -> tuple[str, object]:
    """(final URL, JSON body) of one page, retried on transient failures."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

    retrying = Retrying(
        stop=stop_after_attempt(mapping.max_attempts),
        wait=_wait(mapping),
        retry=retry_if_exception_type(Transient),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                return _get_once(client, url, params)
    except Transient as exc:
        raise FeedError(
            f"{url}: still failing after {mapping.max_attempts} attempts: {exc}"
        ) from None
    raise FeedError(f"{url}: no attempt made")


def _get_once(client, url: str, params: dict) -> tuple[str, object]:
    import httpx

    try:
        response = client.get(url, params=params)
    except httpx.TransportError as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from exc
    shown = str(response.url)
    if response.status_code == 429 or response.status_code >= 500:
        raise Transient(
            f"HTTP {response.status_code}", _retry_after(response.headers.get("retry-after"))
        )
    if response.status_code != 200:
        raise FeedError(f"{shown}: HTTP {response.status_code}")
    try:
        return shown, parse(response.text, max_depth=None)
    except RecordError as exc:
        raise FeedError(f"{shown}: the page cannot be read: {exc}") from None


def _wait(mapping: HttpMapping):
    from tenacity import wait_exponential

    backoff = wait_exponential(multiplier=mapping.backoff_s, max=60)

    def wait(state) -> float:
        error = state.outcome.exception() if state.outcome else None
        after = getattr(error, "retry_after", None)
        if after is not None:
            return min(after, mapping.max_retry_after_s)
        return backoff(state)

    return wait


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parsed = urlparse(url)
    return parsed.scheme, parsed.hostname, parsed.port
