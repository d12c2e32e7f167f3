"""The quality gate: Great Expectations suites from ``schemas/expectations`` over each batch."""
