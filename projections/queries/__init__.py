"""The read side's queries: what the API and the CLI ask of the read models. The stream
processors (one module per projection, beside this package) only write them."""
