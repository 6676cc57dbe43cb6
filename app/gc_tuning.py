"""Garbage collection for a process holding the FHIR models: the server, and its CPU workers."""

from __future__ import annotations

import gc


def freeze_and_tune() -> None:
    """Call once the long-lived objects exist (models loaded, app built).

    The FHIR models are ~200k long-lived objects; without freezing them every full collection walks them
    all (~150 ms pauses that showed up as p99 latency in bench/). The youngest generation is collected
    every 10,000 new objects instead of 700: a request allocates thousands, and with 700 the objects of
    every request in flight were promoted at each collection until a full collection ran every ~2 s,
    stopping the event loop 50-190 ms. bench: secured identifier searches at concurrency 8, p99 110 -> 64
    ms (gen0 and gen1 pauses stay ~10-30 ms); a PLO report's CPU ~12% less (bench.kith_profile)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
