"""The lifecycle read model's tables: fact rows found by (partnership, moment), the
periods folded from them, and the organisation's models and catalogues (see
projections/lifecycle_rows.py for how they are written)."""

ROWS_DDL = """
-- partner_name sorts by code point (COLLATE "C"), as Python sorts strings.
CREATE TABLE IF NOT EXISTS {rm}.partners (
    partnership_id  uuid PRIMARY KEY,
    partner_name    text COLLATE "C" NOT NULL,
    opened_at       timestamptz NOT NULL,
    last_contact_at timestamptz
);
CREATE TABLE IF NOT EXISTS {rm}.tenure_facts (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    owner_unit     text NOT NULL,
    steward        text NOT NULL,
    steward_left   boolean NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS tenure_facts_at ON {rm}.tenure_facts (partnership_id, at, version);
CREATE TABLE IF NOT EXISTS {rm}.transitions (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    previous       text NOT NULL,
    stage          text NOT NULL,
    reason         text NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS transitions_at ON {rm}.transitions (partnership_id, at, version);
CREATE TABLE IF NOT EXISTS {rm}.segments (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    now            text NOT NULL,
    future         text NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS segments_at ON {rm}.segments (partnership_id, at, version);
CREATE TABLE IF NOT EXISTS {rm}.contacts (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS contacts_at ON {rm}.contacts (partnership_id, at);
CREATE TABLE IF NOT EXISTS {rm}.activities (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    our_hours      double precision NOT NULL,
    their_hours    double precision NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS activities_at ON {rm}.activities (partnership_id, at);
CREATE TABLE IF NOT EXISTS {rm}.evaluations (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    outcome        double precision NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS evaluations_at ON {rm}.evaluations (partnership_id, at);
-- The catalogue an evaluation scored (NULL: recorded before any catalogue existed).
ALTER TABLE {rm}.evaluations ADD COLUMN IF NOT EXISTS catalogue_version bigint;
-- The organisation's criteria catalogues, each in force from its effective moment.
CREATE TABLE IF NOT EXISTS {rm}.catalogues (
    version   bigint PRIMARY KEY,
    effective timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {rm}.interests (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    inbound        boolean NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
CREATE INDEX IF NOT EXISTS interests_at ON {rm}.interests (partnership_id, at);
-- The roles the partner plays, from the opening and every change of them.
CREATE TABLE IF NOT EXISTS {rm}.role_facts (
    partnership_id uuid NOT NULL,
    version        bigint NOT NULL,
    at             timestamptz NOT NULL,
    roles          text[] NOT NULL,
    PRIMARY KEY (partnership_id, version)
);
-- The organisation's operating models, each in force from its effective moment.
CREATE TABLE IF NOT EXISTS {rm}.operating_models (
    version   bigint PRIMARY KEY,
    effective timestamptz NOT NULL,
    cells     jsonb NOT NULL
);
-- [valid_from, valid_to): what held then; valid_to NULL while it still holds.
CREATE TABLE IF NOT EXISTS {rm}.periods (
    partnership_id uuid NOT NULL,
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    partner_name   text COLLATE "C" NOT NULL,
    opened_at      timestamptz NOT NULL,
    owner_unit     text NOT NULL,
    steward        text NOT NULL,
    stage          text NOT NULL,
    stage_since    timestamptz NOT NULL,
    segment_now    text,
    segment_future text,
    left_at        timestamptz,
    PRIMARY KEY (partnership_id, valid_from)
);
CREATE INDEX IF NOT EXISTS periods_board ON {rm}.periods (partner_name, partnership_id, valid_from);
-- The steward's identity (domain.people.person_key), written beside the name as typed:
-- the board's steward filter and the count of '++' partnerships per steward group by it,
-- so "Alice" and "alice" are one steward. Rows written before it existed hold NULL until
-- a rebuild of this projection fills them.
ALTER TABLE {rm}.tenure_facts ADD COLUMN IF NOT EXISTS steward_key text;
ALTER TABLE {rm}.periods ADD COLUMN IF NOT EXISTS steward_key text;
DROP INDEX IF EXISTS {rm}.periods_steward;
CREATE INDEX IF NOT EXISTS periods_steward_key ON {rm}.periods (steward_key, partner_name, partnership_id);
CREATE INDEX IF NOT EXISTS periods_unit ON {rm}.periods (owner_unit, partner_name, partnership_id);
CREATE INDEX IF NOT EXISTS periods_stage ON {rm}.periods (stage, partner_name, partnership_id);
"""
