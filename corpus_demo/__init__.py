"""The demo beside the product: a partner delivery of synthesised tracks for every connector
(`delivery`, `connectors`, `synth`) and the small HTTP feed server its feed partner needs
(`feed`). The product never imports it; it plugs `corpus demo-data` and the feed server into
the `corpus` command through entry points (`commands`)."""
