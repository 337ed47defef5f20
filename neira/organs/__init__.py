"""The organ builder: staged builds of cell pipelines, manual control, and a live stream per organ.

`from neira.organs import OrganBuilder` is the public entry point; the package splits its parts:
builder (the service), scheduler (one timer task for every build), batch (group commit of builds),
plan (template checks and the dry-run), store (SQL) and stream (the per-organ live feed).
"""

from neira.organs.builder import GATE, BuildRequest, OrganBuilder

__all__ = ["GATE", "BuildRequest", "OrganBuilder"]
