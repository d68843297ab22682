"""The directory read model's tables (projections/directory.py writes them,
projections/queries/directory.py reads them)."""

TABLES = ("partnerships", "partnership_trigrams", "networks", "network_trigrams")

# name_key: the name as domain.names.normalise makes it ("" once erased), sorted by code
# point (COLLATE "C"); trigram_count: how many trigrams it has, the |a| of similarity.
# *_at and *_version: the valid time and version of the fact held, so that a back-dated
# one does not replace a later one. domains: the partner's e-mail domains, for calendar
# capture (projections/queries/calendar_match.py); added after the table was first
# shipped, so an active version gains it on upgrade (empty until the directory is rebuilt).
DDL = """
CREATE TABLE IF NOT EXISTS {rm}.partnerships (
    partnership_id  uuid PRIMARY KEY,
    partner_name    text NOT NULL,
    name_key        text COLLATE "C" NOT NULL,
    trigram_count   int NOT NULL,
    kind            text NOT NULL,
    roles           text[] NOT NULL,
    roles_at        timestamptz NOT NULL,
    roles_version   bigint NOT NULL,
    owner_unit      text NOT NULL,
    steward         text NOT NULL,
    steward_key     text NOT NULL,
    tenure_at       timestamptz NOT NULL,
    tenure_version  bigint NOT NULL,
    stage           text NOT NULL,
    segment_now     text,
    segment_future  text,
    segment_at      timestamptz,
    segment_version bigint,
    opened_at       timestamptz NOT NULL,
    ended           boolean NOT NULL,
    merged_into     uuid
);
CREATE INDEX IF NOT EXISTS partnerships_by_name ON {rm}.partnerships (name_key, partnership_id);
CREATE INDEX IF NOT EXISTS partnerships_by_opening ON {rm}.partnerships (opened_at, partnership_id);
CREATE INDEX IF NOT EXISTS partnerships_by_steward ON {rm}.partnerships (steward_key, name_key, partnership_id);
CREATE INDEX IF NOT EXISTS partnerships_by_unit ON {rm}.partnerships (owner_unit, name_key, partnership_id);
CREATE INDEX IF NOT EXISTS partnerships_by_roles ON {rm}.partnerships USING gin (roles);
ALTER TABLE {rm}.partnerships ADD COLUMN IF NOT EXISTS domains text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS partnerships_by_domain ON {rm}.partnerships USING gin (domains);
CREATE TABLE IF NOT EXISTS {rm}.partnership_trigrams (
    partnership_id uuid NOT NULL,
    trigram        text COLLATE "C" NOT NULL,
    PRIMARY KEY (partnership_id, trigram)
);
CREATE INDEX IF NOT EXISTS partnership_trigrams_by_trigram ON {rm}.partnership_trigrams (trigram, partnership_id);
CREATE TABLE IF NOT EXISTS {rm}.networks (
    network_id    uuid PRIMARY KEY,
    name          text NOT NULL,
    name_key      text COLLATE "C" NOT NULL,
    trigram_count int NOT NULL,
    role          text NOT NULL,
    activity      text NOT NULL,
    purposes      text[] NOT NULL,
    joined_at     timestamptz NOT NULL,
    ended         boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS networks_by_name ON {rm}.networks (name_key, network_id);
CREATE INDEX IF NOT EXISTS networks_by_joining ON {rm}.networks (joined_at, network_id);
CREATE TABLE IF NOT EXISTS {rm}.network_trigrams (
    network_id uuid NOT NULL,
    trigram    text COLLATE "C" NOT NULL,
    PRIMARY KEY (network_id, trigram)
);
CREATE INDEX IF NOT EXISTS network_trigrams_by_trigram ON {rm}.network_trigrams (trigram, network_id);
"""
