"""The core container: every service, wired once, handed to the HTTP layer by create_app()."""

from __future__ import annotations

import logging
from pathlib import Path

from neira.analysis import Analyzer
from neira.audit import Audit
from neira.catalog import Catalog
from neira.commands.service import CommandService
from neira.config import Settings
from neira.events import EventBus
from neira.factory import Factory
from neira.graduation import Graduation
from neira.immune import Immune
from neira.metrics import Metrics
from neira.organs import OrganBuilder
from neira.policy import PolicyEngine
from neira.runtime import Registry, RunService, builtin_registry
from neira.runtime.sandbox.limits import limits_of
from neira.shadow import Shadow
from neira.storage.db import Database, Pool
from neira.training import Trainer

log = logging.getLogger("neira")

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


class Core:
    """Owns storage, the event bus, audit, metrics, policy, the catalog, the factory, the organ builder and
    the Command Cell, and the runtime that runs cells and organs (`registry`: the implementations, built-in
    by default; tests hand in a copy with doubles of their own)."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.db = Database(settings.db_url, Pool(settings.db_pool_size, settings.db_max_overflow,
                                                 settings.db_pool_timeout_s), settings.listen_url)
        self.schema: str | None = None  # the schema revision, once start-up has migrated
        self.ready = False  # started and not stopping
        self.events = EventBus(self.db, self.metrics)
        self.audit = Audit(self.db, self.metrics)
        self.policy = PolicyEngine(self.db, self.events, self.audit, self.metrics)
        self.catalog = Catalog(self.db, settings.data_path / "cells", self.metrics)
        self.factory = Factory(self.db, self.catalog, self.policy, self.events, self.audit, self.metrics,
                               sandbox_limits=limits_of(settings).report())
        self.organs = OrganBuilder(
            self.db, self.catalog, self.factory, self.policy, self.events, self.audit, self.metrics,
            settings.stage_delays_ms, compat=lambda organ, bodies: self.runs.pathway_risks(organ, bodies),
            sweep_ms=(settings.sweep_interval_ms, settings.sweep_grace_ms),
        )
        self.runs = RunService(
            settings, registry or builtin_registry(), self.db, self.catalog, self.policy, self.metrics,
            self.organs.rows.get, lambda: self.factory.records_generation,
        )
        self.training = Trainer(self.db, self.runs, self.runs.sources, self.events, self.audit, self.metrics)
        self.analysis = Analyzer(self.db, self.runs, self.events, settings.analysis_interval_ms)
        self.graduation = Graduation(self.db, self.analysis, self.organs, self.factory, self.events, self.audit,
                                     enabled=settings.analysis_interval_ms > 0)
        self.shadow = Shadow(self.db, self.runs.sources, self.runs, self.analysis, self.metrics, settings.canary_share,
                             max(1, settings.workers // 2), lambda: self.runs.pool.waiting > 0)
        self.immune = Immune(self.db, self.runs, self.factory, self.catalog, self.events, self.audit, self.metrics,
                             settings.integrity_interval_s)
        self.runs.guard = self.immune.guard  # quarantined records get no traffic
        self.runs.listeners += [self.shadow.served, self.immune.served]
        self.commands = CommandService(self)

    async def start(self) -> None:
        """Create the schema, load policy state, register the example catalog, resume in-flight builds."""
        self.settings.data_path.mkdir(parents=True, exist_ok=True)
        _, self.schema = await self.db.create()
        await self.db.start()  # SQLite's checkpoints; on PostgreSQL the other replicas' commits reach the caches
        await self.policy.load(self.settings.capabilities, self.settings.safe_mode)
        await self.immune.start()  # before the examples: their registration writes missing catalog files again
        added = await self.catalog.register_examples(Path(self.settings.examples_dir) if self.settings.examples_dir else EXAMPLES_DIR)
        if any(added.values()):
            await self.immune.check_integrity()  # the first start: check the files just written too
        await self.factory.start()
        await self.graduation.start()
        await self.organs.start()
        self.analysis.start()
        self.ready = True

    async def stop(self) -> None:
        """Stop timers and close storage. Nothing is lost: state is already committed."""
        self.ready = False  # readiness answers 503 from here on, so a load balancer drains this replica
        await self.commands.close()
        self.runs.pool.stop_spawning()  # the analysis' runs are cancelled next: their workers are not replaced
        await self.shadow.close()
        await self.analysis.close()
        await self.immune.close()
        await self.runs.close()
        await self.organs.close()
        await self.factory.close()
        await self.db.close()
