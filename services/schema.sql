-- Verkosto's own tables beside the event store; every statement is idempotent.
CREATE TABLE IF NOT EXISTS {schema}.command_log (
    command_id   text PRIMARY KEY,
    aggregate_id uuid NOT NULL,
    version      bigint NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- Kafka consumers store their next offset in the same transaction as their effect.
CREATE TABLE IF NOT EXISTS {schema}.consumer_positions (
    consumer    text NOT NULL,
    topic       text NOT NULL,
    partition   int NOT NULL,
    next_offset bigint NOT NULL,
    -- A topic recreated under the same name (a broker that lost its data) has a new id.
    topic_id    text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);

-- How far the relay has published the notification log, and to which topic instance.
CREATE TABLE IF NOT EXISTS {schema}.relay_positions (
    relay      text PRIMARY KEY,
    position   bigint NOT NULL,
    topic_id   text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS {schema}.api_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Tamper evidence: each event's link hashes the previous link with the event's stored
-- bytes (see services/audit/chain.py). Written in the events' own transaction.
CREATE TABLE IF NOT EXISTS {schema}.event_chain (
    position bigint PRIMARY KEY,
    previous bigint NOT NULL,
    hash     bytea NOT NULL
);

-- Reads of audit endpoints are themselves audited: who asked what, when.
CREATE TABLE IF NOT EXISTS {schema}.audit_reads (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    path   text NOT NULL,
    query  jsonb NOT NULL
);

-- One key per data subject, named only by the hash of the subject's name. Erasure sets
-- the key to NULL: the subject's sealed fields can then never be read again.
CREATE TABLE IF NOT EXISTS {schema}.subject_keys (
    subject_hash text PRIMARY KEY,
    key          bytea,
    erased_at    timestamptz
);

-- Commands by source and outcome, counted in the same transaction as their effect, so
-- the numbers are exact however often Kafka redelivers.
CREATE TABLE IF NOT EXISTS {schema}.command_outcomes (
    source  text NOT NULL,
    outcome text NOT NULL,  -- accepted, duplicate or rejected
    reason  text NOT NULL,  -- '' when accepted; the rejection's code otherwise
    count   bigint NOT NULL,
    PRIMARY KEY (source, outcome, reason)
);
