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

-- Tokens may expire, and remember (to the minute) when they were last used.
ALTER TABLE {schema}.api_tokens ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE {schema}.api_tokens ADD COLUMN IF NOT EXISTS last_used_at timestamptz;

-- An event's meta as jsonb, for audit search and its indexes. Stored events are
-- immutable, so one that jsonb cannot hold (a NUL or a lone surrogate, accepted before
-- the edge refused them) must not break every search: its meta is read with those
-- escapes replaced by U+FFFD instead.
CREATE OR REPLACE FUNCTION {schema}.stored_meta(state bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN convert_from(state, 'UTF8')::jsonb -> 'meta';
EXCEPTION WHEN others THEN
    BEGIN
        RETURN regexp_replace(convert_from(state, 'UTF8'), '\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})', '\\ufffd', 'g')::jsonb -> 'meta';
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END;
END $$;

-- Dashboard sign-in: the browser holds only a random session id (HttpOnly cookie); the
-- table keeps its SHA-256, the token it stands for (by hash, so deleting the token ends
-- it) and that token sealed with a key derived from the session id, so each request is
-- still checked by authenticate() (revoked or expired tokens end their sessions) and a
-- copy of this table alone reveals no token.
CREATE TABLE IF NOT EXISTS {schema}.dashboard_sessions (
    session_hash text PRIMARY KEY,
    token_hash   text NOT NULL REFERENCES {schema}.api_tokens (token_hash) ON DELETE CASCADE,
    sealed_token bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dashboard_sessions_token_hash ON {schema}.dashboard_sessions (token_hash);

-- Per partition of the topic it feeds, the last offset the relay published and the
-- position of the event there (from the broker's acknowledgements), stored in the same
-- transaction as its relay_positions row. Projection lag is measured against it per
-- partition, so one stuck partition shows, whatever the broker reports as end offsets.
CREATE TABLE IF NOT EXISTS {schema}.relay_partitions (
    relay       text NOT NULL,
    partition   int NOT NULL,
    last_offset bigint NOT NULL,
    position    bigint NOT NULL,
    topic_id    text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (relay, partition)
);
