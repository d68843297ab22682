"""The projector's framework alone: faust, configured as the projector is, taking the
events topic in the projector's batches and doing nothing with them.

It tells how close to the raw aiokafka consume the catch-up can come at all: whatever
the projections cost comes on top of this. Run by run_benchmarks as its own process, as
the projector is:

    python -m tests.benchmarks.faust_floor TOTAL OUT   # VERKOSTO_* name the topic

Once TOTAL events have arrived it writes {"events", "seconds"} (first batch to last) to
OUT, and the benchmark stops it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import faust

from projections.app import framework
from projections.gc_tuning import tune_gc
from services.composition import projector_config
from services.settings import Settings


def create_app(settings: Settings, total: int, out: Path) -> faust.App:
    config = projector_config(settings)
    app, events = framework(dataclasses.replace(config, group=f"{config.group}-floor"))

    @app.agent(events)
    async def take_batches(stream: faust.Stream) -> None:
        first: float | None = None
        taken = 0
        async for batch in stream.take_events(config.batch_size, within=config.batch_within_s):
            now = time.perf_counter()
            first = first or now
            taken += len(batch)
            if taken >= total:
                out.write_text(json.dumps({"events": taken, "seconds": now - first}))

    return app


def main() -> None:
    total, out = int(sys.argv[1]), Path(sys.argv[2])
    tune_gc()  # as `verkosto run projector` does
    faust.Worker(create_app(Settings(), total, out), loglevel="warning").execute_from_commandline()


if __name__ == "__main__":
    main()
