"""Runtime settings, read from the environment (prefix-free names, as operators expect)."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # sqlite+aiosqlite:///./helsebro.db (embedded default) or postgresql+asyncpg://user@host:5432/db
    database_url: str = "sqlite+aiosqlite:///./helsebro.db"
    # A PostgreSQL streaming replica of DATABASE_URL for reads (postgresql+asyncpg://...); empty: none.
    # Searches and reads made for callers go there, except a caller's reads right after its own writes
    # (read-your-writes); the server's own work (delivery, jobs) reads the primary.
    database_read_url: str = ""
    # Public base URL used in Location headers and Bundle links; empty means "derive from the request".
    base_url: str = ""
    # Largest accepted request body in bytes (413 above it).
    max_body_bytes: int = 10 * 1024 * 1024
    # Whether PUT to a new id creates the resource (update-as-create with a client id).
    allow_update_create: bool = True
    # Origins whose browser apps (SMART apps, portals) may call the API, comma-separated
    # (https://portal.example.no,https://app.example.no), or * for any; empty: no CORS headers.
    cors_origins: str = ""
    # Refuse (422) a write whose local reference names no existing resource, as HAPI does by default.
    # False for bulk loads whose references arrive in any order (python -m app.load, migrations).
    referential_integrity: bool = True
    # Default and maximum page size of history bundles.
    default_page_size: int = 50
    max_page_size: int = 1000
    # Connection pool; unset: 6 + 0 on an SQLite file, 30 + 0 on PostgreSQL (app/store/engine.py says why).
    # Waiting longer than db_pool_timeout_s for a connection is an error.
    db_pool_size: int | None = None
    db_max_overflow: int | None = None
    db_pool_timeout_s: float = 30.0
    # PostgreSQL statement_timeout in milliseconds (0: none). A statement cancelled by it answers 503:
    # no search or write may hold a connection and a CPU for minutes.
    db_statement_timeout_ms: int = 30_000
    # Caps on one search (app/fhir/search/parse.py): name=value pairs, and values counting each comma
    # alternative. Far above what clients send; above them planning alone takes seconds (PostgreSQL) or
    # the SQL exceeds SQLite's expression depth.
    search_max_parameters: int = 50
    search_max_values: int = 200
    log_level: str = "INFO"
    # Server processes of `python -m app.serve` (uvicorn workers). Each has its own connection pool and
    # background workers; they share everything else through the database, so more than one needs
    # PostgreSQL (the embedded SQLite database serves one process).
    workers: int = 1
    # Worker processes per server process for pure CPU work: validating the resources of a transaction,
    # reading KITH messages (app/fhir/cpu_pool.py). 0 does it in the server process. On SQLite, served by
    # one process, 1 lets the server use a second core (bench/README.md, "KITH messages").
    cpu_processes: int = 0

    # -- security -------------------------------------------------------------------------------------
    # "jwt": every FHIR request needs a valid bearer token. "off" disables authentication, access policy
    # and audit: for the local demo only, never in production.
    auth_mode: Literal["jwt", "off"] = "jwt"
    # Trusted token issuers ("iss"), comma-separated, and the audience ("aud") tokens must carry.
    auth_issuers: str = ""
    auth_audience: str = "helsebro"
    # Signing keys of the trusted issuers: a local JWKS file and/or a JWKS URL (fetched and cached).
    auth_jwks_file: str = ""
    auth_jwks_url: str = ""
    # The issuer's OAuth endpoints, published in /.well-known/smart-configuration (e.g. HelseID's).
    auth_authorization_endpoint: str = ""
    auth_token_endpoint: str = ""
    # The development issuer (`python -m app.security.devtoken`): its key lives in auth_dev_key_file and
    # is trusted when this is on. For `make run` and tests.
    auth_dev_issuer: bool = False
    auth_dev_key_file: str = ".helsebro-dev/issuer-key.json"
    # Emergency access (akuttilgang): how long one granted break-the-glass lasts, in minutes.
    emergency_access_minutes: int = 120
    # A finished encounter or episode still counts as a care relation for this many days.
    care_relation_days_after_end: int = 30

    # -- subscriptions (R4 rest-hook) -------------------------------------------------------------------
    # Deliver notifications from this process. Every process fills the outbox; turn this off in processes
    # that should only serve the API.
    subscription_worker: bool = True
    # Seconds between looks for due notifications when no write in this process woke the worker.
    subscription_poll_seconds: float = 1.0
    # Retry delay after a failed attempt: base * 2^(attempt-1), at most max; the notification is failed
    # and the subscription set to "error" after max_attempts (the defaults give up after about 50 minutes).
    subscription_retry_base_seconds: float = 5.0
    subscription_retry_max_seconds: float = 600.0
    subscription_max_attempts: int = 12
    # Timeout of one HTTP request to a subscriber.
    subscription_timeout_seconds: float = 10.0
    # Subscriptions written by other server processes are picked up within this many seconds.
    subscription_cache_seconds: float = 2.0
    # Where notifications may go, comma-separated: URL prefixes (https://hooks.example.no/fhir) or hosts
    # (hooks.example.no, *.example.no). Empty: any http(s) endpoint except loopback, link-local and
    # unspecified addresses (names are checked again when resolved at delivery).
    subscription_endpoint_allowlist: str = ""

    # -- asynchronous jobs ($reindex with Prefer: respond-async, $export) -----------------------------------
    # Run jobs from this process. Every process can start them; each job runs on one process at a time.
    job_worker: bool = True
    job_poll_seconds: float = 1.0
    # A process that stops renewing its job's lease (it died) loses the job to another after this long.
    job_lease_seconds: float = 60.0
    # Share of wall time a running job may take (it rests between steps), so requests keep their latency.
    job_duty_cycle: float = 0.5
    # Resources per step: a $reindex batch, or one $export file.
    job_batch_size: int = 500
    # Finished jobs and their export files are deleted after this many hours.
    job_retention_hours: float = 24.0

    # -- KITH legacy messages (app/adapters/kith) -----------------------------------------------------------
    # Directory with the official KITH/Helsedirektoratet XSDs (searched recursively). Empty: messages are
    # not validated against schemas (a warning is logged once per missing schema).
    kith_xsd_dir: str = ""
    # Largest accepted legacy message in bytes (an error AppRec with HTTP 413 above it).
    kith_max_message_bytes: int = 5 * 1024 * 1024
    # AppRec version of the receipts: "1.1" (2012-02-15) or "1.0" (2004-11-21).
    kith_apprec_version: Literal["1.0", "1.1"] = "1.1"
    # Who answers a message that cannot be read at all (a readable one is answered by its addressee).
    kith_receiver_name: str = "Helsebro"
    kith_receiver_her_id: str = ""

    # -- KITH messages over AMQP (app/adapters/transport/amqp.py) -----------------------------------------------
    # amqp://user:password@host:5672/vhost of the national message service's RabbitMQ; empty: no AMQP (the
    # HTTP route /$kith-message stays the intake either way). Never logged.
    amqp_url: SecretStr = SecretStr("")
    # Durable queue the incoming messages (and the AppRecs for messages sent from here) are consumed from.
    amqp_incoming_queue: str = "helsebro.incoming"
    # Where an AppRec goes when its message names no reply_to (declared durable); empty: not published.
    amqp_reply_queue: str = "helsebro.apprec"
    # Outgoing messages: this exchange (which must exist) with this routing key; an empty exchange is the
    # default one, where the routing key names a queue (declared durable).
    amqp_outgoing_exchange: str = ""
    amqp_outgoing_routing_key: str = "helsebro.outgoing"
    # Messages fetched ahead (unacknowledged); they are taken in one at a time, in delivery order.
    amqp_prefetch: int = 10
    # A message that failed for a reason worth retrying goes back to the queue after this many seconds.
    amqp_retry_seconds: float = 5.0
    # How often the outbox is looked at (a message written in this process is sent when its write commits;
    # the look finds other processes' messages and those to resend, and each look is an audited search),
    # how long a sent message waits for its AppRec before it is sent again (same MsgId), and how many
    # records one look takes of each kind (new, to resend).
    amqp_outbox_poll_seconds: float = 30.0
    amqp_resend_seconds: float = 900.0
    amqp_outbox_batch: int = 100
    # Handovers of one message at most: one that has had them all and still no AppRec after the resend
    # interval is given up (Communication.status not-done, for an operator to follow up). 6 is the first
    # send and up to 5 resends, as Norsk Helsenett's message service resends (transport/README.md).
    amqp_max_sends: PositiveInt = 6
    # Declare the incoming queue with x-single-active-consumer, so that of several server processes one
    # takes the messages, in order. False for a queue that already exists without the argument (RabbitMQ
    # refuses to declare a queue again with other arguments).
    amqp_single_active_consumer: bool = True
    # Seconds between attempts to reach the broker (at start, and after the connection was lost).
    amqp_reconnect_seconds: float = 5.0

    # -- referrals --------------------------------------------------------------------------------------
    # JSON file with the common referral intake's routing rules (app/resources/referrals/routing.py
    # describes the format; routing-example.json beside it is an example). Empty: no $route operation.
    referral_routing_rules: str = ""

    # -- the pregnancy health card (app/resources/pregnancy_card) -----------------------------------------
    # JSON file with the card's pilot area: organisation numbers (a region, health trust or any unit, with
    # everything below it through partOf), kommunenummer and system client ids where card content may be
    # written (README.md there, "Access and the pilot switch"). Read again when it changes, no restart. Empty: enabled nowhere.
    pregnancy_card_pilot_file: str = ""
    # Secret key of the research extract's pseudonyms (HMAC-SHA256, at least 32 bytes; README.md
    # there). Unset: $pregnancy-extract answers 503. Changing it changes every pseudonym.
    pseudonym_key: SecretStr = SecretStr("")
