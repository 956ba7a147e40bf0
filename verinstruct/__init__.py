"""verinstruct: verifiable instruction following (VerIF) — data model, VerInstruct dataset and the `verif` CLI."""

__version__ = "0.1.0"
