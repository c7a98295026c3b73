"""Studies: YAML design-space sweeps evaluated into tidy tables, and their Pareto fronts.

`load_study(path)` validates a study file; `run_study(study)` evaluates it into a Parquet table;
`pareto_front(df, x, y)` picks the non-dominated rows. `store` is the results contract that tables
and their viewers share (the metric registry, cost columns, Parquet with provenance); `requantize(row)`
applies a row's format to its workload's data again. `crest_factor_crossover(int_fmt, fp_fmt)` bins Gaussian
blocks by crest factor and finds where FP overtakes INT (Chen et al.'s method).
"""

from . import store
from .crossover import CrossoverResult, crest_factor_crossover
from .pareto import pareto_front
from .replay import Requantized, requantize
from .runner import RunResult, run_study, study_hash
from .schema import SCHEMA_VERSION, Study, StudyError, load_study, validate_study
from .store import Metric, provenance, register_metric, unregister_metric

__all__ = [
    "SCHEMA_VERSION",
    "CrossoverResult",
    "Metric",
    "Requantized",
    "RunResult",
    "Study",
    "StudyError",
    "crest_factor_crossover",
    "load_study",
    "pareto_front",
    "provenance",
    "register_metric",
    "requantize",
    "run_study",
    "store",
    "study_hash",
    "unregister_metric",
    "validate_study",
]
