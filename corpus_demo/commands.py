"""What the demo adds to the `corpus` command, through the entry points in pyproject.toml:
`corpus demo-data`, and the feed server under `corpus services start|stop`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo-data")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), required=False)
def demo_data(folder: Path | None) -> None:
    """Write the demo partner delivery (default: $CORPUS_HOME/demo), start its feed server,
    and print its partners file (pass it as --partners or CORPUS_PARTNERS)."""
    from corpus_demo.delivery import ensure_demo_delivery
    from pipeline.config import corpus_home

    folder = folder or corpus_home() / "demo"
    click.echo(str(ensure_demo_delivery(folder.resolve())))


class FeedService:
    """The demo feed server as one of the services `corpus services` starts and stops."""

    name = "demo feed server"

    def start(self, home: Path) -> str | None:
        """Its address, started if the demo delivery under `home` exists; else None."""
        from corpus_demo.delivery import serve_demo_feed

        root = home / "demo"
        return serve_demo_feed(root) if (root / "partners.yaml").is_file() else None

    def stop(self, home: Path) -> bool:
        from corpus_demo.delivery import feed_folder
        from corpus_demo.feed import stop_feed_server

        return stop_feed_server(feed_folder(home / "demo"))


feed_service = FeedService()
