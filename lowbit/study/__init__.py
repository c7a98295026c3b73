"""Studies: YAML design-space sweeps evaluated into tidy tables, and their Pareto fronts.

`load_study(path)` validates a study file; `run_study(study)` evaluates it into a Parquet table;
`pareto_front(df, x, y)` picks the non-dominated rows.
"""

from .pareto import pareto_front
from .runner import RunResult, provenance, run_study, study_hash
from .schema import SCHEMA_VERSION, Study, StudyError, load_study, validate_study

__all__ = [
    "SCHEMA_VERSION",
    "RunResult",
    "Study",
    "StudyError",
    "load_study",
    "pareto_front",
    "provenance",
    "run_study",
    "study_hash",
    "validate_study",
]
