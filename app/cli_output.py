"""What `kinemo generate` shows on stderr while it runs: the memory plan, warnings, a progress bar; and the
stats it collects for --stats."""

from __future__ import annotations

import sys


class EventPrinter:
    """Shows a run's events on stderr (the memory plan, notices, a progress bar) and collects its stats."""

    def __init__(self):
        self.bar = None
        self.stats: dict = {}

    def show(self, event) -> None:
        from tqdm import tqdm

        from engine.api.events import Finished, Loaded, MemoryNotice, Notice, Progress

        if isinstance(event, Loaded):
            self.stats["load_seconds"] = event.seconds
        elif isinstance(event, MemoryNotice):
            self._say(event.message)  # the estimate and the choice, before the run
            self._plan_stats(event.plan)
        elif isinstance(event, Notice):
            self._say(f"warning: {event.message}")
        elif isinstance(event, Progress):
            if self.bar is None:  # a resumed run's first step is past those its checkpoint held
                self.bar = tqdm(
                    total=event.total,
                    initial=event.step - 1,
                    desc="generating",
                    unit="step",
                    file=sys.stderr,
                    leave=False,
                )
            elif event.step == 1 and self.bar.n:  # a retry (after running out of memory) starts over
                self.bar.reset(total=event.total)
            self.bar.update(1)
        elif isinstance(event, Finished):
            self.stats["generate_seconds"] = event.seconds
            self.stats.update(event.stats)

    def _say(self, line: str) -> None:
        """A line on stderr, above the progress bar when one is showing (never glued onto it)."""
        from tqdm import tqdm

        if self.bar is None:
            print(line, file=sys.stderr)
        else:
            tqdm.write(line, file=sys.stderr)

    def _plan_stats(self, plan) -> None:
        if plan is None:
            return
        self.stats.update(
            memory_policy=plan.policy.name,
            memory_estimate_ram_mb=plan.estimate.ram / 2**20,
            memory_estimate_vram_mb=plan.estimate.vram / 2**20,
            memory_baseline_mb=plan.estimate.parts.get("baseline", 0) / 2**20,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
