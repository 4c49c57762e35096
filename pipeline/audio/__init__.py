"""Audio handling: fetch delivered files, decode them once, and synthesise known test signals."""
