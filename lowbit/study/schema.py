"""The study file's schema (pydantic): versioned, unknown keys rejected, errors that name the path.

A study declares formats (names, inline specs, or sweeps over spec fields), workloads (synthetic
distributions, tensors from files, GEMM pairs), metrics, cost-model settings and where the table goes.
`load_study(path)` parses and validates a YAML file; `StudyError` carries every problem, each as
`path: message` (for example `formats[3].block: must be a positive integer, got 0`), all in one report:
structure, names, every point's format spec, the point count, every workload file's header, and that each
matrix engine a GEMM metric names reads the formats it runs on.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from ..costmodel import EngineCost, Estimate, engine_cost, estimate, get_node
from ..formats import AnyFormat, EngineProfile, get_accumulator, get_engine, get_format
from ..lazy import FACTORY_FORM
from ..simulator import Rounding
from ..simulator.engine_gemm import cannot_read
from ..simulator.host.inputs import MAX_SR_BITS
from .datafiles import MissingTensorError, check_npy, check_safetensors, resolve_input
from .errors import ECHO_CHARS, StudyError, clip, echo, error_message, error_path
from .paths import plain_name, relative_folder, table_path
from .store import WorkloadKind, get_metric, metric_column
from .yamlio import read_yaml, with_lines

SCHEMA_VERSION = 1
ROUNDINGS = tuple(m.name.lower() for m in Rounding)  # what parse_enum reads: rne, rtz, ..., stochastic
LARGE_STUDY = 10_000  # points a study runs without consent (`allow_large: true` or --allow-large)
MAX_POINTS = 1_000_000  # points a study may have even with consent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known(lookup: Callable[[str], Any], what: str) -> Callable[[str], str]:
    """A validator that keeps a name `lookup` knows: its error, reported under the field's path,
    says `unknown <what> 'x'; ...` (lowbit's lookups name the argument first, the path does here)."""

    def check(value: str) -> str:
        if len(value) > ECHO_CHARS:  # no name is this long; the lookup would quote it whole
            raise ValueError(f"unknown {what} {echo(value)}")
        try:
            lookup(value)
        except (ValueError, TypeError) as err:
            raise ValueError(str(err).removeprefix(f"{what}: ").replace("unknown name", f"unknown {what}", 1)) from None
        return value

    return check


FormatName = Annotated[str, AfterValidator(_known(get_format, "format"))]
AccumulatorName = Annotated[str, AfterValidator(_known(get_accumulator, "accumulator"))]
NodeName = Annotated[str, AfterValidator(_known(get_node, "node"))]


def _short(value: str) -> str:
    if len(value) > ECHO_CHARS:  # no name is this long, and an error would quote it whole
        raise ValueError(f"no name lowbit knows is this long (over {ECHO_CHARS} characters)")
    return value


ShortName = Annotated[str, AfterValidator(_short)]  # a format name, checked when the spec is built
ENGINE_CHARS = 200  # an engine name, its PTX qualifiers written out, is longer than a format's


def _engine_text(value: Any) -> Any:
    """[arch, instruction] as 'arch:instruction' (anything else goes on to the string check)."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return f"{value[0]}:{value[1]}"
    return value


def _engine(value: str) -> str:
    """A matrix engine as lowbit names it, 'arch:instruction' (qualifiers dropped, a block-scaled kind's
    block and scale type written out), so that one engine has one column however it was spelled."""
    arch, colon, instruction = value.partition(":")
    if len(value) > ENGINE_CHARS or not colon:
        raise ValueError(f"must be 'arch:instruction' or [arch, instruction] (lowbit.simulator.engines() lists "
                         f"them), got {echo(value)}")  # fmt: skip
    try:
        p = get_engine(arch.strip(), instruction.strip())
    except (ValueError, TypeError) as err:
        text = str(err)
        raise ValueError(text if "engines()" in text else f"{text}; lowbit.simulator.engines() lists them") from None
    return f"{p.arch.value}:{p.instruction}"


EngineName = Annotated[str, BeforeValidator(_engine_text), AfterValidator(_engine)]


def _promotion_problem(engine: str | None, promote_every: int | None) -> str | None:
    """What is wrong with promoting every `promote_every` elements of K on `engine` (None: nothing)."""
    if promote_every is None:
        return None
    if engine is None:
        return "promotion applies to a matrix engine; give `engine` too"
    k = engine_profile(engine).k
    return f"must be a multiple of {engine}'s k = {k} elements of K" if promote_every % k else None


def engine_profile(engine: str) -> EngineProfile:
    """The profile of an engine the schema has checked ('arch:instruction')."""
    arch, _, instruction = engine.partition(":")
    return get_engine(arch, instruction)


PlainName = Annotated[str, AfterValidator(plain_name)]  # a file name inside the output folder
RelativeFolder = Annotated[str, AfterValidator(relative_folder)]


class FormatSpec(_Strict):
    """One format: a base name and the fields it changes, plus what runs before it."""

    format: ShortName
    element: ShortName | None = None
    block: int | None = None
    scale: ShortName | None = None
    rule: ShortName | None = None
    asymmetric: bool | None = None
    rounding: Literal[ROUNDINGS] = "rne"  # type: ignore[valid-type]
    seed: int = Field(default=0, description="seed of stochastic rounding")
    sr_bits: StrictInt | None = Field(default=None, description="random bits per element of stochastic rounding")
    hadamard: int | None = Field(default=None, description="Hadamard size (power of two) applied first")
    hadamard_seed: int | None = Field(default=None, description="seed of the Hadamard's random signs")
    label: str | None = None

    @field_validator("block")
    @classmethod
    def _block(cls, v):
        if v is not None and v < 1:
            raise ValueError("must be a positive integer")
        return v

    @field_validator("sr_bits")
    @classmethod
    def _sr_bits(cls, v):
        if v is not None and not 1 <= v <= MAX_SR_BITS:
            raise ValueError(f"must be an integer from 1 to {MAX_SR_BITS}, or left out (62 bits)")
        return v

    @model_serializer(mode="wrap")
    def _without_unused_sr_bits(self, handler) -> dict[str, Any]:
        """Without sr_bits, the dump (and so the point's hash) is what it was before sr_bits."""
        data = handler(self)
        return data if self.sr_bits is not None else {k: v for k, v in data.items() if k != "sr_bits"}

    @field_validator("hadamard")
    @classmethod
    def _hadamard(cls, v):
        if v is not None and (v < 1 or v & (v - 1)):
            raise ValueError("must be a power of two")
        return v

    def spec(self) -> AnyFormat:
        """The format spec (ValueError or TypeError when the fields do not make a format)."""
        options: dict[str, Any] = {}
        if self.element is not None:
            options["element"] = get_format(self.element)
        if self.block is not None:
            options["block"] = self.block
        if self.scale is not None:
            options["scale"] = None if self.scale.lower() in ("fp32", "float32") else get_format(self.scale)
        if self.rule is not None:
            options["rule"] = self.rule
        if self.asymmetric is not None:
            options["asymmetric"] = self.asymmetric
        if self.sr_bits is not None and self.rounding != "stochastic":
            raise ValueError(f"sr_bits: goes with rounding 'stochastic' only, got rounding {self.rounding!r}")
        return get_format(self.format, **options)

    @property
    def name(self) -> str:
        """A readable label: the base name and every changed field."""
        if self.label:
            return self.label
        parts = [self.format]
        for key in ("element", "block", "scale", "rule", "asymmetric"):
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key}={value}")
        if self.rounding != "rne":
            parts.append(f"rounding={self.rounding}")
        if self.sr_bits is not None:
            parts.append(f"sr_bits={self.sr_bits}")
        if self.hadamard:
            parts.append(f"hadamard={self.hadamard}")
        return " ".join(parts)


class Sweep(_Strict):
    """The cartesian product of spec fields: `sweep: {format: [mxfp4, nvfp4], hadamard: [null, 16]}`."""

    sweep: dict[str, list[Any]]

    @field_validator("sweep")
    @classmethod
    def _fields(cls, v):
        unknown = sorted(set(v) - set(FormatSpec.model_fields))
        if unknown:
            raise ValueError(f"unknown field(s) {clip(str(unknown))}; a sweep varies {sorted(FormatSpec.model_fields)}")
        if "format" not in v:
            raise ValueError("a sweep needs a 'format' list")
        empty = [k for k, values in v.items() if not values]
        if empty:
            raise ValueError(f"empty list for {empty}")
        for key, values in v.items():  # each value alone, so that a bad one fails here and not on expansion
            for value in values:
                try:
                    FormatSpec(**{"format": "", key: value})
                except ValidationError as err:
                    raise ValueError(f"{key}: {error_message(err.errors()[0])}") from None
        return v

    @property
    def size(self) -> int:
        """Points of the sweep, counted without expanding it."""
        return math.prod(len(values) for values in self.sweep.values())

    def expand(self) -> list[FormatSpec]:
        keys = list(self.sweep)
        return [FormatSpec(**dict(zip(keys, combo, strict=True))) for combo in itertools.product(*self.sweep.values())]


def _format_kind(v: Any) -> str:
    if isinstance(v, str):
        return "name"
    if isinstance(v, dict) and "sweep" in v:
        return "sweep"
    return "spec"


FormatEntry = Annotated[
    Annotated[ShortName, Tag("name")] | Annotated[Sweep, Tag("sweep")] | Annotated[FormatSpec, Tag("spec")],
    Discriminator(_format_kind),
]


class _Shaped(_Strict):
    shape: list[Annotated[int, Field(ge=1)]] = [64, 1024]
    seed: int = 0
    name: str | None = None


class Distribution(_Shaped):
    """Normal, Laplace, uniform in [-1, 1], or log-normal activations (random sign x exp(N(0, sigma)))."""

    kind: Literal["normal", "laplace", "uniform", "lognormal"]
    sigma: float = Field(default=1.0, gt=0)


class StudentT(_Shaped):
    kind: Literal["student_t"]
    df: float = Field(gt=0)


class Outliers(_Shaped):
    """Normal data with one element of every `group` along the last axis set to +-crest_factor times
    the group's rms: each group's crest factor (max |x| / rms) is then about crest_factor."""

    kind: Literal["outliers"]
    crest_factor: float = Field(gt=1)
    group: int = Field(default=32, ge=2)


class NpyFile(_Strict):
    kind: Literal["npy"]
    path: str
    name: str | None = None


class SafetensorsFile(_Strict):
    kind: Literal["safetensors"]
    path: str
    tensor: str
    name: str | None = None


Synthetic = Annotated[Distribution | StudentT | Outliers, Field(discriminator="kind")]


class Gemm(_Strict):
    """An activation x weight pair: a (M, K) and b (K, N) from synthetic workloads (b is drawn
    (N, K) and transposed, so its blocks run along K)."""

    kind: Literal["gemm"]
    a: Synthetic
    b: Synthetic
    name: str | None = None


# Relative sizes of the Gaussian noise that measures each layer's sensitivity (when the study has allocations).
Noise = Annotated[list[Annotated[float, Field(gt=0, le=1)]], Field(min_length=1)]


_ENGINE_KEYS = ("engine", "promote_every")


class _EngineWorkload(_Strict):
    """A model workload's matrix engine: `engine` ('arch:instruction' or [arch, instruction]) runs the
    layers' products as that instruction over K in place of `accumulator` (and `chunk`), with
    `promote_every` elements of K between promotions into float32 (lowbit.simulator.matmul's engine)."""

    engine: EngineName | None = None
    promote_every: int | None = Field(default=None, ge=1, description="elements of K between promotions")

    @model_validator(mode="after")
    def _engine_replaces_the_accumulator(self) -> _EngineWorkload:
        why = _promotion_problem(self.engine, self.promote_every)
        if why:
            raise ValueError(f"promote_every: {why}")
        if self.engine is None:
            return self
        fields = type(self).model_fields
        if any(getattr(self, k) != fields[k].default for k in ("accumulator", "chunk") if k in fields):
            raise ValueError("engine: an engine sets the accumulation itself; leave accumulator and chunk out")
        if getattr(self, "activations", None) is None:
            raise ValueError("engine: an engine multiplies two formats; give `activations` too")
        return self

    @model_serializer(mode="wrap")
    def _without_unused_engine(self, handler) -> dict[str, Any]:
        """Without an engine, the dump (and so the study's hash) is what it was before engines."""
        data = handler(self)
        return data if self.engine is not None else {k: v for k, v in data.items() if k not in _ENGINE_KEYS}


class ModelWorkload(_EngineWorkload):
    """A real model (all-MiniLM-L6-v2) whose linear layers' weights take the format, on the first
    `sentences` of lowbit's fidelity sentences; `activations` (a format) quantizes the layers' inputs
    too, and their products then run through the GEMM emulator with `accumulator` (or on a matrix
    `engine`, see `_EngineWorkload`)."""

    kind: Literal["model"]
    model: Literal["minilm"] = "minilm"
    sentences: int = Field(default=240, ge=2, le=240)
    activations: FormatName | None = None
    accumulator: AccumulatorName = "fp32"
    noise: Noise = [0.05, 0.1]
    name: str | None = None


def _factory(value: str) -> str:
    if len(value) > ECHO_CHARS or not FACTORY_FORM.fullmatch(value):
        raise ValueError(f"must be 'package.module:function' (a module importable from the study file's folder, "
                         f"and a function in it), got {echo(value)}")  # fmt: skip
    return value


class TorchWorkload(_EngineWorkload):
    """A user's torch model (extra `torch`; see lowbit.torch.study): `factory`, 'package.module:function',
    returns (model, batches, metric), its module imported with the study file's folder first on sys.path
    (user code, run by design). Every nn.Linear whose name matches `layers` (fnmatch) takes the format on
    its weights (a matched layer of another type with a weight matrix fails the point, naming it);
    `activations` quantizes those layers' inputs too; `accumulator` runs their products through the GEMM
    emulator (None: torch's float32 matmul), `chunk` products summed exactly before each accumulation;
    `engine` (with `promote_every`) runs them on a matrix engine instead, as lowbit.torch.Rule does.
    `noise`: as a model workload's, for allocations."""

    kind: Literal["torch"]
    factory: Annotated[str, AfterValidator(_factory)]
    layers: str = Field(default="*", min_length=1, max_length=200, description="fnmatch pattern of layer names")
    activations: FormatName | None = None
    accumulator: AccumulatorName | None = None
    chunk: int | None = Field(default=None, ge=1)
    noise: Noise = [0.05, 0.1]
    name: str | None = None

    @field_validator("accumulator")
    @classmethod
    def _accumulator_needs_activations(cls, v, info: ValidationInfo):
        if v is not None and "activations" in info.data and info.data["activations"] is None:
            raise ValueError(f"{v!r} emulates a product of two formats; give `activations` too, or leave the "
                             "accumulator out for torch's float32 matmul")  # fmt: skip
        return v

    @field_validator("chunk")
    @classmethod
    def _chunk_needs_accumulator(cls, v, info: ValidationInfo):
        if v is not None and "accumulator" in info.data and info.data["accumulator"] is None:
            raise ValueError("a chunk splits an emulated accumulation; give `accumulator` too")
        return v


class Predictor(enum.Enum):
    """How an allocation predicts each layer's share of the fidelity drop."""

    THEOREM = "theorem"  # alpha_l (from injected noise) times the layer's relative weight MSE
    MEASURED = "measured"  # the drop measured with the format on that layer alone


class Allocation(_Strict):
    """A per-layer mix of the study's formats, chosen on each model or torch workload by dynamic
    programming to maximise predicted fidelity with at most `budget` bits per weight on average (scale
    bits included). options: names of formats of this study (default: all of them). predictor: `theorem`
    (the linearity theorem) or `measured` (per-layer drops measured on `calibration` sentences of the
    workload, evenly spaced, or on a torch workload that many of its batches; default all of them)."""

    budget: float = Field(gt=0, le=64, description="average bits per weight")
    options: list[str] | None = Field(default=None, min_length=1)
    predictor: Predictor = Predictor.THEOREM
    calibration: int | None = Field(
        default=None, ge=2, le=240, description="sentences (at most the workload's: a reduced study uses them all)"
    )
    name: str | None = None

    @property
    def label(self) -> str:
        suffix = "" if self.predictor is Predictor.THEOREM else f"_{self.predictor.value}"
        return self.name or f"dp_{self.budget:g}b{suffix}"


Workload = Annotated[
    Distribution | StudentT | Outliers | NpyFile | SafetensorsFile | Gemm | ModelWorkload | TorchWorkload,
    Field(discriminator="kind"),
]


_WORKLOAD = TypeAdapter(Workload)


def parse_workload(text: str) -> Workload:
    """A workload from its JSON (a table row's `workload_spec`, a point's payload)."""
    return _WORKLOAD.validate_json(text)


def _gemm_metric(name: str) -> str:
    if WorkloadKind.GEMM not in get_metric(name).kinds:
        raise ValueError(f"metric {name!r} takes no options; only GEMM metrics do (accumulator, chunk)")
    return name


class GemmOptions(_Strict):
    """A GEMM metric's emulator settings. Fields left out stay out of the study's hash and of the
    column's name (`gemm_relative_error_<accumulator>` only when the accumulator is given).

    engine: a matrix engine, 'arch:instruction' or [arch, instruction], in place of the accumulator and
    chunk: the product runs as that instruction over K (`lowbit.simulator.matmul(engine=...)`), and the
    column is `<metric>_<engine slug>` (lowbit.study.store.engine_slug). promote_every: with an engine,
    its result added into a float32 register every this many elements of K (a multiple of its k).
    formats: names of the study's formats the entry runs on (default: all); on the others its column is
    NaN. An engine must read every format it runs on (the study's validation says which it cannot)."""

    accumulator: AccumulatorName = "fp32"
    chunk: int | None = Field(default=None, ge=1)
    engine: EngineName | None = None
    promote_every: int | None = Field(default=None, ge=1, description="elements of K between promotions")
    formats: list[ShortName] | None = Field(default=None, min_length=1)

    @field_validator("promote_every")
    @classmethod
    def _promotes_an_engine(cls, v, info: ValidationInfo):
        if v is None or "engine" not in info.data:  # a bad engine: reported on its own
            return v
        why = _promotion_problem(info.data["engine"], v)
        if why:
            raise ValueError(why)
        return v

    @model_validator(mode="after")
    def _engine_or_accumulator(self) -> GemmOptions:
        fields = type(self).model_fields  # values, not fields_set: a dumped entry validates again
        clash = [k for k in ("accumulator", "chunk") if getattr(self, k) != fields[k].default]
        if self.engine is not None and clash:
            raise ValueError(f"engine and {' and '.join(clash)} are exclusive: an engine sets the accumulation "
                             f"itself; leave {' and '.join(clash)} out")  # fmt: skip
        return self

    def runs_on(self, format_name: str) -> bool:
        """Whether the entry runs on the study's format of that name."""
        return self.formats is None or format_name in self.formats


MetricName = Annotated[str, AfterValidator(_known(get_metric, "metric"))]
GemmEntry = Annotated[
    dict[Annotated[str, AfterValidator(_gemm_metric)], GemmOptions], Field(min_length=1, max_length=1)
]
MetricEntry = Annotated[
    Annotated[MetricName, Tag("name")] | Annotated[GemmEntry, Tag("gemm")],
    Discriminator(lambda v: "name" if isinstance(v, str) else "gemm"),
]


_UNIT_SETTINGS = ("lanes", "accumulator", "partial_sum_bits", "b_format")  # what an engine's datapath sets


class Cost(_Strict):
    """Cost-model settings (see lowbit.costmodel.estimate), the one home of their defaults.
    b_format: the other operand of the unit (default: the format itself).

    engine: a matrix engine ('arch:instruction' or [arch, instruction]) whose fused dot-product datapath
    is the unit priced (lowbit.costmodel.engine_cost) in place of lanes, accumulator and partial sums:
    area_um2 is then the datapath's (um^2), area_per_lane_um2 its area per product summed, and
    energy_pj_per_mac its energy per MAC (pJ), and a `fraction_bits` column (bits) joins them; the memory
    columns stay the format's. fraction_bits: the fused sum's fraction bits in place of the engine's, to
    price a narrower or wider accumulator. Left out, neither enters the study's hash."""

    node: NodeName = "7nm"
    lanes: int = Field(default=32, ge=1)
    accumulator: AccumulatorName = "fp32"
    partial_sum_bits: int | None = 24
    b_format: FormatName | None = None
    engine: EngineName | None = None
    fraction_bits: int | None = Field(default=None, ge=1, le=64)

    @model_validator(mode="after")
    def _engine_replaces_the_unit(self) -> Cost:
        if self.engine is None:
            if self.fraction_bits is not None:
                raise ValueError("fraction_bits: sets an engine's fused sum; give `engine` too")
            return self
        clash = [k for k in _UNIT_SETTINGS if k in self.model_fields_set]
        if clash:
            raise ValueError(f"engine and {', '.join(clash)} are exclusive: the engine's datapath sets them; "
                             f"leave {', '.join(clash)} out")  # fmt: skip
        self.engine_cost()  # an engine whose sum has no width to set refuses fraction_bits: said here
        return self

    @model_serializer(mode="wrap")
    def _what_prices_the_unit(self, handler) -> dict[str, Any]:
        """The settings that apply: without an engine, those of before engines (so that such a study
        dumps and hashes as it did); with one, the engine's, so that the dump validates again."""
        data = handler(self)
        unused = _UNIT_SETTINGS if self.engine is not None else ("engine", "fraction_bits")
        return {k: v for k, v in data.items() if k not in unused}

    def engine_cost(self) -> EngineCost:
        """The engine's datapath at this node (ValueError without an engine)."""
        if self.engine is None:
            raise ValueError("cost: names no engine")
        arch, _, instruction = self.engine.partition(":")
        return engine_cost(arch, instruction, node=self.node, fraction_bits=self.fraction_bits)

    def estimate(self, fmt: AnyFormat, reduction_length: int) -> Estimate:
        """The unit multiplying `fmt` (by b_format) with these settings; `reduction_length` is the K
        that per-channel and per-tensor scales are spread over."""
        return estimate(fmt, self.b_format or fmt, self.accumulator, self.lanes, self.node, self.partial_sum_bits,
                        reduction_length=reduction_length)  # fmt: skip


class Output(_Strict):
    """Where the table goes: `file` (default <study name>.parquet) in `dir`, a folder below the current
    one (see lowbit.study.paths: a study file cannot write outside it)."""

    dir: RelativeFolder = "results"
    file: PlainName | None = None


class Study(_Strict):
    schema_version: Literal[SCHEMA_VERSION]  # type: ignore[valid-type]
    name: PlainName
    description: str = ""
    formats: list[FormatEntry] = Field(min_length=1)
    workloads: list[Workload] = Field(min_length=1)
    metrics: list[MetricEntry] = ["mse", "qsnr_db"]
    allocations: list[Allocation] = []
    cost: Cost | None = None
    output: Output = Output()
    executor: Literal["local", "dask"] = "local"
    workers: int = Field(default=1, ge=1)
    allow_large: bool = Field(default=False, description=f"consent to more than {LARGE_STUDY:,} points")

    def table_path(self, out_dir: str | Path | None = None) -> Path:
        """Where the table is written: `out_dir` (default output.dir) / output.file (default
        <name>.parquet); ValueError if that would leave the folder (a Study built without validation)."""
        return table_path(Path(out_dir or self.output.dir), self.output.file or f"{self.name}.parquet")

    def reduced(self, rows: int = 8) -> Study:
        """The same study on workloads of at most `rows` rows (a quick check of a long study)."""

        def shrink(w):
            if isinstance(w, ModelWorkload):
                return w.model_copy(update={"sentences": min(w.sentences, max(2, rows // 2))})
            if isinstance(w, Gemm):
                return w.model_copy(update={"a": shrink(w.a), "b": shrink(w.b)})
            if hasattr(w, "shape"):
                return w.model_copy(update={"shape": [min(w.shape[0], rows), *w.shape[1:]]})
            return w

        return self.model_copy(update={"workloads": [shrink(w) for w in self.workloads]})

    def metric_entries(self) -> list[str | dict[str, dict[str, Any]]]:
        """The metrics as plain data, as the study gave them (options left out stay out)."""
        return [m if isinstance(m, str) else {k: v.model_dump(exclude_unset=True) for k, v in m.items()}
                for m in self.metrics]  # fmt: skip

    def format_specs(self) -> list[FormatSpec]:
        """Every format point, sweeps expanded, in file order."""
        return [spec for _, spec in self.indexed_specs()]

    def indexed_specs(self) -> list[tuple[int, FormatSpec]]:
        return _expand(enumerate(self.formats))


def _expand(entries: Iterable[tuple[int, Any]]) -> list[tuple[int, FormatSpec]]:
    """(index, format entry) pairs into (index, FormatSpec) points, sweeps expanded."""
    out: list[tuple[int, FormatSpec]] = []
    for i, entry in entries:
        if isinstance(entry, str):
            out.append((i, FormatSpec(format=entry)))
        elif isinstance(entry, Sweep):
            out.extend((i, spec) for spec in entry.expand())
        else:
            out.append((i, entry))
    return out


# Union tags that pydantic puts after a list index; a path leaves them out.
_TAGS = frozenset({"name", "sweep", "spec", "gemm", "normal", "laplace", "uniform", "lognormal", "student_t",
                   "outliers", "npy", "safetensors", "model", "torch"})  # fmt: skip


def validate_study(
    data: Any,
    source: str = "study",
    *,
    base: str | Path | None = None,
    allow_large: bool = False,
    earlier: Iterable[str] = (),
) -> Study:
    """A Study from parsed YAML, or StudyError listing every problem at its path, in one report.

    base:        the folder that workload paths are relative to; given, every workload file is checked
                 (exists, readable, a valid .npy or .safetensors header). None skips the file checks.
    allow_large: consent to more than LARGE_STUDY points (as the study's `allow_large: true`).
    earlier:     problems found before validation (the YAML reader's duplicate keys), reported first.
    """
    if not isinstance(data, dict):
        raise StudyError(source, [*earlier, f"(top level): a study is a mapping of keys, got {type(data).__name__}"])
    if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
        raise StudyError(source, [f"schema_version: this lowbit reads version {SCHEMA_VERSION}, "
                                  f"got {echo(data['schema_version'])}"])  # fmt: skip
    problems = list(earlier)
    study = None
    try:
        study = Study.model_validate(data)
    except ValidationError as err:
        problems += [f"{error_path(e['loc'], _TAGS)}: {error_message(e)}" for e in err.errors()]
    # With the structure broken, the entries that are sound on their own are still checked.
    formats = list(enumerate(study.formats)) if study else _sound(data.get("formats"), _FORMAT_ENTRY)
    workloads = list(enumerate(study.workloads)) if study else _sound(data.get("workloads"), _WORKLOAD)
    allocations = len(study.allocations) if study else len(_as_list(data.get("allocations")))
    count = _count_problem(formats, workloads, allocations, allow_large or data.get("allow_large") is True)
    if count:
        problems.append(count)
    else:  # expanding the sweeps is bounded now
        problems += _format_problems(formats)
        problems += _allocation_problems(study) if study else []
        problems += _metric_problems(study) if study else []
    if base is not None:
        problems += _file_problems(workloads, Path(base))
    if problems:
        raise StudyError(source, problems)
    assert study is not None  # no problem means it validated
    return study


_FORMAT_ENTRY = TypeAdapter(FormatEntry)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _sound(raw: Any, adapter: TypeAdapter) -> list[tuple[int, Any]]:
    """(index, parsed entry) for each entry of a raw list that validates alone."""
    out = []
    for i, item in enumerate(_as_list(raw)):
        with contextlib.suppress(ValidationError):  # a broken entry: reported with the structural errors
            out.append((i, adapter.validate_python(item)))
    return out


def _count_problem(formats: list, workloads: list, allocations: int, allow_large: bool) -> str | None:
    """The point count's problem, counted without expanding a sweep: None if it may run."""
    specs = sum(entry.size if isinstance(entry, Sweep) else 1 for _, entry in formats)
    models = sum(isinstance(w, (ModelWorkload, TorchWorkload)) for _, w in workloads)
    points = len(workloads) * specs + allocations * models
    plural = "" if len(workloads) == 1 else "s"
    what = f"the study has {points:,} points ({len(workloads):,} workload{plural} x {specs:,} formats" + (
        f", plus {allocations * models:,} allocation rows)" if allocations * models else ")"
    )
    if points > MAX_POINTS:
        return f"formats: {what}, more than {MAX_POINTS:,}, the most a study may have (even with allow_large)"
    if points > LARGE_STUDY and not allow_large:
        return (f"formats: {what}, more than the {LARGE_STUDY:,} a study runs without consent; add "
                "`allow_large: true` to the study, or pass `lowbit run --allow-large`")  # fmt: skip
    return None


def _format_problems(formats: list[tuple[int, Any]]) -> list[str]:
    """Every format point makes a valid spec."""
    out = []
    for i, spec in _expand(formats):
        try:
            spec.spec()
        except (ValueError, TypeError) as err:
            entry = dict(formats)[i]
            out.append(f"formats[{i}]" + (f" ({clip(spec.name)})" if isinstance(entry, Sweep) else "") + f": {err}")
    return out


def _file_problems(workloads: list[tuple[int, Any]], base: Path) -> list[str]:
    """Every workload file exists, is readable and has a valid header."""
    out = []
    for i, w in workloads:
        if not isinstance(w, (NpyFile, SafetensorsFile)):
            continue
        path = resolve_input(w.path, base)
        try:
            check_npy(path) if isinstance(w, NpyFile) else check_safetensors(path, w.tensor)
        except MissingTensorError as err:
            out.append(f"workloads[{i}].tensor: {err}")
        except ValueError as err:
            out.append(f"workloads[{i}].path: {echo(w.path)}: {err}")
    return out


def _allocation_problems(study: Study) -> list[str]:
    """Allocations need a model or torch workload, options that name the study's formats, and unique
    labels."""
    if not study.allocations:
        return []
    out = []
    if not any(isinstance(w, (ModelWorkload, TorchWorkload)) for w in study.workloads):
        out.append("allocations: need a workload of kind 'model' or 'torch'")
    names = [spec.name for spec in study.format_specs()]
    labels = [a.label for a in study.allocations]
    for i, a in enumerate(study.allocations):
        for j, option in enumerate(a.options or []):
            if option not in names:
                out.append(f"allocations[{i}].options[{j}]: not a format of this study ({clip(', '.join(names))}), "
                           f"got {echo(option)}")  # fmt: skip
        if labels.count(a.label) > 1 or a.label in names:
            out.append(f"allocations[{i}]: its name {echo(a.label)} is taken; give each allocation its own name")
    return out


def _gemm_entries(study: Study) -> list[tuple[int, str, GemmOptions]]:
    """(index, metric name, options) of every metric entry with options."""
    return [(i, *next(iter(m.items()))) for i, m in enumerate(study.metrics) if isinstance(m, dict)]


def _metric_problems(study: Study) -> list[str]:
    """Metric entries' `formats` name formats of the study, their engines read those formats, and no two
    entries write one column where either runs on some formats only."""
    out = []
    specs = study.format_specs()
    names = [spec.name for spec in specs]
    for i, metric, options in _gemm_entries(study):
        path = f"metrics[{i}].{metric}"
        for j, name in enumerate(options.formats or []):
            if name not in names:
                out.append(f"{path}.formats[{j}]: not a format of this study ({clip(', '.join(names))}), "
                           f"got {echo(name)}")  # fmt: skip
        if options.engine is not None:
            out += _engine_problems(path, options, [s for s in specs if options.runs_on(s.name)])
    out += _column_clashes(study)
    return out


def _engine_problems(path: str, options: GemmOptions, specs: list[FormatSpec]) -> list[str]:
    profile = engine_profile(options.engine)
    out = []
    for spec in specs:
        why = cannot_read(profile, spec.spec())
        if why:
            out.append(f"{path}.engine: {options.engine} cannot run formats point {clip(spec.name)!r}: {why}; "
                       "list the formats it reads in the entry's `formats`")  # fmt: skip
    return out


def _column_clashes(study: Study) -> list[str]:
    """Two entries of one column where either runs on some formats only: the later's NaN would hide the
    earlier's values."""
    out = []
    seen: dict[str, tuple[int, bool]] = {}
    for i, entry in enumerate(study.metric_entries()):
        column = metric_column(entry)
        partial = isinstance(entry, dict) and "formats" in next(iter(entry.values()))
        if column in seen and (partial or seen[column][1]):
            out.append(f"metrics[{i}]: writes the column {column!r}, as metrics[{seen[column][0]}] does; give each "
                       "entry its own accumulator, engine or promotion")  # fmt: skip
        seen.setdefault(column, (i, partial))
    return out


def load_study(path: str | Path, *, allow_large: bool = False) -> Study:
    """Read and validate a study YAML file (see lowbit.study.yamlio for the bounds on the file, and
    validate_study for the checks); workload paths are relative to the file's folder."""
    p = Path(path)
    data, duplicates = read_yaml(p)
    try:
        return validate_study(data, str(p), base=p.resolve().parent, allow_large=allow_large, earlier=duplicates)
    except StudyError as err:  # each problem gains the line where the file writes it
        raise StudyError(str(p), with_lines(p, err.problems)) from None
