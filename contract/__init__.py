"""Contract v1: what integrators send (commands) and what the bus carries (published
events), derived from the domain's own declarations so that nothing is spelled twice.
Shared by the services and the projections; imports nothing but ``domain`` and pydantic."""
