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
-- A token may belong to a person (`token issue --person`): the name as given, and its
-- identity (domain.people.person_key), which `steward=me` filters by.
ALTER TABLE {schema}.api_tokens ADD COLUMN IF NOT EXISTS person text;
ALTER TABLE {schema}.api_tokens ADD COLUMN IF NOT EXISTS person_key text;

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

-- Audit search (services/store.py EventStore.search) answers each documented filter from
-- an index whose last column is the position, so "filter AND notification_id > cursor
-- ORDER BY notification_id LIMIT n" is one index range scan whatever the store's size.
-- The meta fields live in event_meta, one narrow row per event, written in the events'
-- own transaction: by the event store's recorder, which has each event's JSON at hand
-- (services/event_meta.py), and by a statement trigger for anything that writes events
-- around it. Each event is parsed once, where expression indexes on the events table
-- would parse it once per index (measured: ~6x the write cost). Nothing in it is sealed
-- personal data: actor, source and the two times are plaintext in the event itself.
CREATE TABLE IF NOT EXISTS {schema}.event_meta (
    notification_id bigint NOT NULL,
    actor           text,
    source          text,
    occurred_at     timestamptz,
    recorded_at     timestamptz,
    -- A time range and the position order are two dimensions one btree cannot both
    -- serve: the time-first indexes below answer a narrow range (then its few rows are
    -- sorted), this one a wide range (positions in order, the times read from the
    -- index entry or this narrow row, never from the event). The planner picks.
    PRIMARY KEY (notification_id) INCLUDE (occurred_at, recorded_at)
);
CREATE INDEX IF NOT EXISTS event_meta_actor ON {schema}.event_meta (actor, notification_id);
CREATE INDEX IF NOT EXISTS event_meta_source ON {schema}.event_meta (source, notification_id);
CREATE INDEX IF NOT EXISTS event_meta_occurred ON {schema}.event_meta (occurred_at, notification_id);
CREATE INDEX IF NOT EXISTS event_meta_recorded ON {schema}.event_meta (recorded_at, notification_id);

-- A stored time, as an instant. IMMUTABLE, as it only depends on its argument: the
-- application writes ISO 8601 with an offset (AwareDatetime), so the cast reads neither
-- TimeZone nor DateStyle; one without an offset is read as UTC, not in the session's
-- zone; anything else ('now', garbage) is NULL, never an error that would refuse the write.
CREATE OR REPLACE FUNCTION {schema}.meta_time(value text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF value !~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d' THEN
        RETURN NULL;
    END IF;
    IF value !~ '(Z|z|[+-]\d\d(:?\d\d)?)$' THEN
        value := value || '+00:00';
    END IF;
    RETURN value::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

-- Read through stored_meta, so an event jsonb cannot hold still gets its row. A
-- transaction of the recorder says it writes the rows itself (re-parsing every event
-- here cost ~33 us an event, a tenth of the ingest's budget).
CREATE OR REPLACE FUNCTION {schema}.record_event_meta() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('verkosto.event_meta_by_recorder', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO {schema}.event_meta (notification_id, actor, source, occurred_at, recorded_at)
    SELECT notification_id, m ->> 'actor', m ->> 'source',
           {schema}.meta_time(m ->> 'occurred_at'), {schema}.meta_time(m ->> 'recorded_at')
    FROM (SELECT notification_id, {schema}.stored_meta(state) AS m FROM inserted_events) e;
    RETURN NULL;
END $$;

-- The library creates the events table (services/eventstore.py) before this file runs.
-- CREATE TRIGGER waits for inserts in flight, so after it every new event gets its row
-- by the trigger and every older one by the backfill below (in this same transaction).
CREATE OR REPLACE TRIGGER verkosto_events_meta AFTER INSERT ON {schema}.verkosto_events
    REFERENCING NEW TABLE AS inserted_events FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.record_event_meta();
INSERT INTO {schema}.event_meta (notification_id, actor, source, occurred_at, recorded_at)
SELECT notification_id, m ->> 'actor', m ->> 'source',
       {schema}.meta_time(m ->> 'occurred_at'), {schema}.meta_time(m ->> 'recorded_at')
FROM (
    SELECT e.notification_id, {schema}.stored_meta(e.state) AS m FROM {schema}.verkosto_events e
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.event_meta x WHERE x.notification_id = e.notification_id)
) missing;

-- type, aggregate_type and aggregate_id filter the events table's own columns.
CREATE INDEX IF NOT EXISTS verkosto_events_audit_topic
    ON {schema}.verkosto_events (topic, notification_id);
CREATE INDEX IF NOT EXISTS verkosto_events_audit_aggregate
    ON {schema}.verkosto_events (originator_id, notification_id);

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

-- Snapshots of aggregates (services/snapshots.py), so a command or a read of current
-- state costs the same for the 3,000th event as for the 3rd: the latest snapshot plus
-- the events after it. One row per aggregate, replaced every SNAPSHOT_EVERY versions.
-- Personal fields are sealed with the same per-subject keys as the events, so an
-- erasure reaches snapshots too (and a copy of this table alone reveals nobody).
CREATE TABLE IF NOT EXISTS {schema}.aggregate_snapshots (
    originator_id      uuid PRIMARY KEY,
    originator_version bigint NOT NULL,
    topic              text NOT NULL,
    state              bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- Bumped in the transaction that destroys a subject's key: every process's aggregate
-- cache compares it on each load and drops what it holds when it moved. One row, so
-- increments are serialised and a later commit always shows a larger number.
CREATE TABLE IF NOT EXISTS {schema}.erasure_generation (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint NOT NULL
);

-- Checkpoints of the as_of/known_at fold (services/history_checkpoints.py): the view of
-- an aggregate's first originator_version events in valid-time order, every
-- SNAPSHOT_EVERY versions. A query may start from the latest one whose events all
-- occurred by its as_of and were recorded by its known_at (the maxima are monotone in
-- the version, so that is one index range). Personal fields sealed, as in snapshots.
CREATE TABLE IF NOT EXISTS {schema}.history_checkpoints (
    originator_id      uuid NOT NULL,
    originator_version bigint NOT NULL,
    max_occurred_at    timestamptz NOT NULL,
    max_recorded_at    timestamptz NOT NULL,
    view               bytea NOT NULL,
    PRIMARY KEY (originator_id, originator_version)
);
