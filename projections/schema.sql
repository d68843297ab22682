-- Read models and their tracking; every statement is idempotent.

-- Exactly-once guard: per projection and aggregate, the last version applied. Events of
-- one aggregate share a partition, so they arrive in version order; anything at or below
-- this version is a redelivery and is skipped.
CREATE TABLE IF NOT EXISTS {schema}.rm_applied (
    projection   text NOT NULL,
    aggregate_id uuid NOT NULL,
    version      bigint NOT NULL,
    position     bigint NOT NULL,
    PRIMARY KEY (projection, aggregate_id)
);

-- Per projection and partition: the furthest event applied, for freshness and lag.
-- started_at is when the first batch began; updated_at when the latest one finished.
CREATE TABLE IF NOT EXISTS {schema}.rm_positions (
    projection   text NOT NULL,
    partition    int NOT NULL,
    kafka_offset bigint NOT NULL,
    position     bigint NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (projection, partition)
);

-- Ownership timeline: one row per tenure start, in valid time (occurred_at).
CREATE TABLE IF NOT EXISTS {schema}.rm_ownership (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    valid_from     timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    owner_unit     text NOT NULL,
    steward        text NOT NULL,
    reason         text NOT NULL,
    actor          text NOT NULL,
    position       bigint NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS rm_ownership_valid_from
    ON {schema}.rm_ownership (partnership_id, valid_from, version);
CREATE INDEX IF NOT EXISTS rm_ownership_steward ON {schema}.rm_ownership (steward, valid_from);
