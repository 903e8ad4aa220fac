"""Regenerate sim/scenario.schema.json from the pydantic Scenario model."""

from sim.scenario import SCHEMA_PATH, json_schema

if __name__ == "__main__":
    SCHEMA_PATH.write_text(json_schema())
    print(f"wrote {SCHEMA_PATH}")
