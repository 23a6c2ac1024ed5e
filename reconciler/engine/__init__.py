"""The generic engine: diffing, deciding, planning and applying, the same for every kind."""
