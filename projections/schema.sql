-- Which version of each read model the API reads and the projector writes. Each version
-- lives in a schema of its own, so a rebuild fills a new one while the old keeps answering,
-- and the swap is one row update.
CREATE TABLE IF NOT EXISTS {schema}.rm_active (
    projection   text PRIMARY KEY,
    version      int NOT NULL,
    rm_schema    text NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now()
);
