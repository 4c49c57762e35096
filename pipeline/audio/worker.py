"""`python -m pipeline.audio.worker FD`: one isolated analysis worker (see `isolation`).

Kept apart from `isolation` so that starting a worker imports nothing but the standard library
before it learns what to run."""

import sys

from pipeline.audio.isolation import worker_main

if __name__ == "__main__":
    worker_main(int(sys.argv[1]))
