"""create_app(settings): the one place that wires engines, registries, hooks and routers together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import orjson
from fastapi import FastAPI

from app import gc_tuning
from app.adapters.eresept import outgoing as eresept_outgoing
from app.adapters.kith import dialog_outgoing as kith_dialog_outgoing
from app.adapters.kith import epikrise_outgoing as kith_epikrise_outgoing
from app.adapters.kith import routes as kith_routes
from app.adapters.kith import status_messages as kith_status_messages
from app.adapters.plo import operations as plo_operations
from app.adapters.plo import outgoing as plo_outgoing
from app.adapters.plo import report_outgoing as plo_report_outgoing
from app.adapters.transport.amqp import AmqpConfig, AmqpTransport
from app.config import Settings
from app.cors import install_cors
from app.disconnect import CancelOnDisconnect
from app.docs import PUBLIC_PATHS as DOCS_PATHS
from app.docs import router as docs_router
from app.errors import install_error_handlers
from app.fhir.api import OPERATIONS as FHIR_OPERATIONS
from app.fhir.api import router as fhir_router
from app.fhir.capability import capability_statement
from app.fhir.cpu_pool import CpuPool
from app.fhir.engine import Engine
from app.fhir.interactions.reindex import ReindexReport, load_stored_search_parameters
from app.fhir.jobs import routes as job_routes
from app.fhir.jobs.spec import JobConfig
from app.fhir.jobs.worker import JobWorker
from app.fhir.operations import OperationRegistry
from app.fhir.registry import Registry
from app.fhir.routing import fallback_router
from app.fhir.search.parse import SearchLimits
from app.fhir.service import FhirService
from app.fhir.subscriptions import SubscriptionConfig, install_subscriptions
from app.middleware import BodyLimitAndAccessLog
from app.openapi import install_openapi
from app.portal import PUBLIC_PATHS as PORTAL_PATHS
from app.portal import router as portal_router
from app.resources.core_journal import CORE_JOURNAL_TYPES
from app.resources.core_journal import flow as core_journal_flow
from app.resources.core_journal import guard as core_journal_guard
from app.resources.core_journal import summary as core_journal_summary
from app.resources.core_journal.classify import load_rules as load_core_journal_rules
from app.resources.medication_list import guard as medication_list_guard
from app.resources.medication_list import operations as medication_list_operations
from app.resources.medication_list import proposals as medication_list_proposals
from app.resources.no_basis import install as install_no_basis
from app.resources.pregnancy_card import flow as pregnancy_card_flow
from app.resources.pregnancy_card import guard as pregnancy_card_guard
from app.resources.pregnancy_card import operations as pregnancy_card_operations
from app.resources.pregnancy_card.extract_operation import ExtractConfig
from app.resources.pregnancy_card.pilot import PilotFile
from app.resources.pregnancy_card.publish import publish_programme
from app.resources.pregnancy_card.search import install as install_pregnancy_card_search
from app.resources.referrals import operations as referral_operations
from app.resources.referrals import views as referral_views
from app.security.access import install_security
from app.security.authn import install_authentication
from app.security.smart import capability_security
from app.security.stored_principals import PrincipalAccess
from app.store.engine import Database
from app.store.repository import Repository


def app_version() -> str:
    try:
        return package_version("helsebro")
    except PackageNotFoundError:
        return "0.0.0"


def subscription_config(settings: Settings) -> SubscriptionConfig:
    return SubscriptionConfig(
        worker=settings.subscription_worker,
        poll_seconds=settings.subscription_poll_seconds,
        retry_base_seconds=settings.subscription_retry_base_seconds,
        retry_max_seconds=settings.subscription_retry_max_seconds,
        max_attempts=settings.subscription_max_attempts,
        timeout_seconds=settings.subscription_timeout_seconds,
        cache_seconds=settings.subscription_cache_seconds,
        endpoint_allowlist=tuple(settings.subscription_endpoint_allowlist.split(",")),
    )


def job_config(settings: Settings) -> JobConfig:
    return JobConfig(
        poll_seconds=settings.job_poll_seconds,
        lease_seconds=settings.job_lease_seconds,
        duty_cycle=settings.job_duty_cycle,
        batch_size=settings.job_batch_size,
        retention_hours=settings.job_retention_hours,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    if settings.auth_mode != "off" and not settings.base_url:
        # The base URL decides which absolute references are local: on write, on $reindex, in the access
        # facts and in the audit alike. Derived from each request it could differ per request (and so
        # flip compartment membership, which the access policy relies on).
        raise ValueError("BASE_URL must be set when authentication is on (e.g. https://fhir.example.no)")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # httpx logs full URLs at INFO; query strings may carry identifiers (no patient data in logs).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    database = Database(
        settings.database_url,
        settings.db_pool_size,
        settings.db_max_overflow,
        pool_timeout_s=settings.db_pool_timeout_s,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        read_url=settings.database_read_url,
    )
    registry = Registry.standard()
    fhir = FhirService(
        registry=registry,
        repo=Repository(database),
        allow_update_create=settings.allow_update_create,
        referential_integrity=settings.referential_integrity,
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        base_url=settings.base_url.rstrip("/"),
        search_limits=SearchLimits(settings.search_max_parameters, settings.search_max_values),
        cpu=CpuPool(settings.cpu_processes) if settings.cpu_processes > 0 else None,
    )

    # Domain packs register their rules and search parameters before anything reads the registry.
    install_no_basis(registry, fhir.hooks)
    install_pregnancy_card_search(registry)  # the card's resources by pregnancy (episode-of-care)
    referral_operations.install(fhir.hooks)
    medication_list_guard.install(fhir.hooks)
    # Access facts are kept whatever the auth mode; checks and audit only run with authentication on.
    security = install_security(fhir, settings, CORE_JOURNAL_TYPES)
    # Subscriptions: outbox rows in each write's unit of work; the delivery worker runs with the lifespan.
    # With authentication on, delivery and jobs act as the principal that registered or started them.
    if security.enabled:
        fhir.principals = PrincipalAccess()
    subscriptions = install_subscriptions(fhir, subscription_config(settings), fhir.principals)

    async def reindexed_elsewhere() -> None:
        """A $reindex completed (in any process): its search parameters come into force here too."""
        await load_stored_search_parameters(fhir, ReindexReport())
        refresh_capability()

    jobs = JobWorker(
        fhir,
        job_config(settings),
        on_finished=lambda kind: refresh_capability() if kind == "reindex" else None,
        on_reindexed=reindexed_elsewhere,
        run_jobs=settings.job_worker,
    )
    fhir.job_waker = jobs.wake

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Search parameters stored as SearchParameter resources stay in force across restarts.
        await load_stored_search_parameters(fhir, ReindexReport())
        refresh_capability()
        # The programme every pregnancy's CarePlan instantiates resolves here (written when it changed).
        await publish_programme(app.state.engine)
        gc_tuning.freeze_and_tune()
        if fhir.cpu is not None:
            await fhir.cpu.warm()
        await subscriptions.start()
        jobs.start()  # runs jobs only with JOB_WORKER; follows every process's $reindex either way
        if app.state.amqp is not None:
            app.state.amqp.start()
        yield
        if app.state.amqp is not None:
            await app.state.amqp.stop()  # before the database: messages in hand finish or go back
        await jobs.stop()
        await subscriptions.stop()
        await security.close()
        await database.dispose()
        if fhir.cpu is not None:
            fhir.cpu.close()

    app = FastAPI(
        title="Helsebro FHIR R4 API",
        version=app_version(),
        description="FHIR R4 (4.0.1) REST API for Norwegian health and care services. "
        "Request and response bodies are FHIR JSON (application/fhir+json); errors are OperationOutcome.",
        lifespan=lifespan,
        docs_url=None,  # app/docs.py serves Swagger UI without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.fhir = fhir
    app.state.engine = Engine(fhir)
    # Critical information written by any local system is recorded in the core journal (a write hook).
    core_journal_flow.install(app.state.engine, load_core_journal_rules())
    core_journal_guard.install(fhir.hooks)  # entries are the pack's; a clinician sets their status
    # The pregnancy card is written only inside its pilot area; the woman writes only her notes.
    app.state.pregnancy_card_pilot = PilotFile(settings.pregnancy_card_pilot_file)
    pregnancy_card_guard.install(
        fhir.hooks,
        pregnancy_card_guard.PregnancyCardGuard(
            app.state.engine,
            app.state.pregnancy_card_pilot,
            security.sink.denied if security.enabled else None,
        ),
    )
    # The due dates and the programme's CarePlan follow the dating.
    pregnancy_card_flow.install(app.state.engine)
    # The research extract: its pseudonym key, and the security layer's audit of a refusal (as the guard's).
    app.state.pregnancy_extract = ExtractConfig(
        settings.pseudonym_key.get_secret_value().encode(),
        security.sink.denied if security.enabled else None,
    )
    app.state.security = security
    app.state.subscriptions = subscriptions
    app.state.jobs = jobs
    app.state.base_url = settings.base_url.rstrip("/")

    app.state.kith = kith_routes.KithConfig.from_settings(settings)
    # Prescriptions written on FHIR for a pharmacy are sent as e-resept M1 (an outgoing Communication).
    eresept_outgoing.install(app.state.engine, app.state.kith.validator)
    # Communications written on FHIR to an organisation with a HER-id are sent as Dialogmelding 1.1.
    kith_dialog_outgoing.install(app.state.engine, app.state.kith.validator, app.state.kith.own)
    # Discharge summaries (Composition LOINC 18842-5) written on FHIR for a GP with a HER-id: Epikrise 1.2.
    kith_epikrise_outgoing.install(app.state.engine, app.state.kith.validator, app.state.kith.own)
    # Admissions, discharge-ready notices, withdrawals, discharges and deaths written on FHIR for a
    # municipality with a HER-id, and a municipality's answer to a notice from a legacy hospital: PLO
    # Pasientlogistikk; PLO reports (Composition plo-message#<report>) for a receiver with a HER-id.
    plo_outgoing.install(app.state.engine, app.state.kith.validator, app.state.kith.own)
    plo_report_outgoing.install(app.state.engine, app.state.kith.validator, app.state.kith.own)
    # KITH messages over AMQP besides the HTTP route, when AMQP_URL is set (same intake, same outbox).
    app.state.amqp = None
    if settings.amqp_url.get_secret_value():
        app.state.amqp = AmqpTransport(
            app.state.engine, app.state.kith, AmqpConfig.from_settings(settings), app.state.base_url
        )
        app.state.amqp.watch_outbox(fhir.hooks)
    # Referrals received as KITH messages get Dialogmelding status messages back (their referrer is not on FHIR).
    app.state.referrals = referral_operations.ReferralConfig(
        rules=referral_operations.load_rules(settings.referral_routing_rules),
        observers=(kith_status_messages.dialogmelding_observer,),
    )
    # Every operation, from one registry: its routes below, and /metadata.
    operations = OperationRegistry(
        [
            *FHIR_OPERATIONS,
            *job_routes.OPERATIONS,
            *referral_operations.operations(app.state.referrals),
            *referral_views.OPERATIONS,
            *medication_list_operations.OPERATIONS,
            *medication_list_proposals.OPERATIONS,
            *core_journal_summary.OPERATIONS,
            *pregnancy_card_operations.OPERATIONS,
            *kith_routes.OPERATIONS,
            *plo_operations.OPERATIONS,
        ]
    )
    app.state.operations = operations

    def refresh_capability() -> None:
        """/metadata is generated from the registries; call again when the registry changes ($reindex)."""
        statement = capability_statement(registry, operations, settings.base_url, app_version())
        if settings.auth_mode == "jwt":
            statement["rest"][0]["security"] = capability_security(settings)
        app.state.capability = statement
        app.state.capability_bytes = orjson.dumps(statement)

    app.state.refresh_capability = refresh_capability
    refresh_capability()
    install_error_handlers(app, settings.max_body_bytes)
    # The FHIR routes first: requests are matched against the routes in order, and these serve most of
    # them; their typed parameters never take a pack's path (the catch-all for malformed ones comes last).
    app.include_router(fhir_router)
    app.include_router(operations.router())
    app.include_router(job_routes.router)
    app.include_router(portal_router)  # the citizen portal's page and its development sign-in
    app.include_router(docs_router)
    install_openapi(app)
    install_authentication(app, settings, public_paths=PORTAL_PATHS | DOCS_PATHS)
    app.include_router(fallback_router)  # last: it takes every method on every path
    install_cors(app, settings.cors_origins)  # outside authentication: a preflight carries no token
    app.add_middleware(CancelOnDisconnect)  # inside the access log, which records its 499
    app.add_middleware(BodyLimitAndAccessLog, max_body_bytes=settings.max_body_bytes)
    return app
