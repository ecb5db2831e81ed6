"""`seedbench tune`: every method tuned on the same budget, selected on validation, reported on fresh seeds.

The protocol is AlgoPerf's and DeepOBS's, for the methods a study compares:

1. Each method declares what may be tuned and over which ranges (`Method.tunable`,
   seedbench/methods/space.py); a plugin does the same, and the study's YAML may override any range.
2. Every method gets the same number of trials, drawn from one scrambled Halton sequence
   (scipy.stats.qmc) seeded from the study's name and mapped onto its own space: the same study
   name draws the same trials, and a study with more trials keeps the first ones. Each trial runs
   on the same S tuning seeds.
3. Trials are ordinary cells: planned, validated, reused and resumed like any sweep's, on every
   engine. With `halving=ETA`, successive halving prunes them over epochs: each rung is a sweep of
   complete shorter runs (other cells, not prefixes of the long ones: a cell's epochs are part of
   its identity and a schedule such as cosine depends on them), and only the best 1/ETA of the
   trials go on to the next, longer rung; the last rung runs at the study's epochs.
4. Per method and workload (model-dataset) the trial with the highest validation accuracy at the
   end of training (`val_acc`), averaged over the tuning seeds, wins. Final rather than best-epoch
   accuracy, because the final study reports the model at its last epoch and the maximum over
   epochs rewards a run that spikes once. A seed that diverged counts with its last validation
   accuracy (0 where none was measured): a setting that diverges on one seed in three is
   penalised, not forgiven. Test accuracy is never read.
5. The winners are written to `<store>/tuned/<study>.json` (seedbench.sweep.tuned), named and
   versioned; `seedbench sweep ... --preset tuned:<study>` applies them, and refuses any seed the
   study tuned on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedbench.errors import ConfigError, read_yaml
from seedbench.methods.space import Range, parse_space, searched, space_json
from seedbench.sweep.grid import Cell, SweepSpec, finite, parse_seeds, split_list
from seedbench.sweep.tuned import FORMAT, PREFIX, check_study_name, seed_text, study_path, workload

METRIC = "val_acc"  # the record's final validation accuracy; see the module docstring for why
SEQUENCE = "scipy.stats.qmc.Halton"
# keys that say what is trained, on what and for how long: the study's budget and workload, never a hyperparameter
NOT_TUNABLE = frozenset(
    {"model", "dataset", "seed", "init_seed", "data_seed", "augment_seed", "epochs", "limit_train", "val_size", "label", "framework", "lr_table"}
)
TUNE_KEYS = {
    "study",
    "methods",
    "models",
    "datasets",
    "trials",
    "seeds",
    "epochs",
    "space",
    "presets",
    "overrides",
    "halving",
    "store",
    "data_dir",
    "plugins",
    "engine",
    "resources",
    "pack",
    "slurm",
}


@dataclass
class TuneSpec:
    """A tuning study as the user wrote it (flags, a YAML file or the Python API)."""

    study: str
    methods: list[str]
    models: list[str]
    datasets: list[str]
    trials: int
    seeds: list[int]
    epochs: int
    space: dict[str, dict[str, Any]] = field(default_factory=dict)  # per method: {key: range}, over its declared space
    presets: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    halving: int | None = None
    store: str | None = None
    data_dir: str | None = None
    plugins: list[str] = field(default_factory=list)
    engine: str | None = None
    resources: dict[str, Any] | None = None
    pack: int | str | None = None
    slurm: dict[str, Any] | None = None


def _positive(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{what} {value!r}: give an integer >= {minimum}")
    return value


def load_tune_spec(path: Path) -> TuneSpec:
    """A tune YAML file: study, methods, models, datasets, trials, seeds, epochs, and optionally space, halving, ..."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; give a tune YAML file")
    raw = read_yaml(path, "tune file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a tune file is a mapping with study, methods, models, datasets, trials, seeds, epochs")
    unknown = set(raw) - TUNE_KEYS - {"method", "model", "dataset"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(map(str, unknown))}; allowed: {', '.join(sorted(TUNE_KEYS))}")
    missing = [k for k in ("study", "methods", "models", "datasets", "trials", "seeds", "epochs") if k not in raw and k[:-1] not in raw]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}")
    for key, kind in (("space", dict), ("overrides", dict), ("resources", dict), ("slurm", dict)):
        if raw.get(key) is not None and not isinstance(raw[key], kind):
            raise ConfigError(f"{path}: '{key}' must be a mapping")
    for key in ("store", "data_dir", "engine"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{path}: {key} must be a string, found {type(raw[key]).__name__} {raw[key]!r}")
    plugins = split_list(raw.get("plugins"), "plugins")
    plugins = [str((path.parent / p).resolve()) if p.endswith(".py") and not Path(p).is_absolute() else p for p in plugins]
    return TuneSpec(
        study=raw["study"],
        methods=split_list(raw.get("methods", raw.get("method")), "methods"),
        models=split_list(raw.get("models", raw.get("model")), "models"),
        datasets=split_list(raw.get("datasets", raw.get("dataset")), "datasets"),
        trials=raw["trials"],
        seeds=parse_seeds(raw["seeds"], "seeds"),
        epochs=raw["epochs"],
        space=dict(raw.get("space") or {}),
        presets=split_list(raw.get("presets"), "presets"),
        overrides=dict(raw.get("overrides") or {}),
        halving=raw.get("halving"),
        store=raw.get("store"),
        data_dir=raw.get("data_dir"),
        plugins=plugins,
        engine=raw.get("engine"),
        resources=raw.get("resources"),
        pack=raw.get("pack"),
        slurm=raw.get("slurm"),
    )


# -- the draw ------------------------------------------------------------------------------------------


def sampler_seed(study: str) -> int:
    """The Halton scrambling seed: a hash of the study's name, so the same name draws the same trials."""
    return int.from_bytes(hashlib.sha256(f"seedbench tune {study}".encode()).digest()[:4], "big")


def draw_trials(study: str, space: Mapping[str, Range], trials: int) -> list[dict[str, Any]]:
    """`trials` configs from `space`: the first points of the study's scrambled Halton sequence, one
    dimension per searched key (in sorted order), each mapped through its range."""
    from scipy.stats import qmc

    keys = searched(space)
    points = qmc.Halton(d=len(keys), scramble=True, seed=sampler_seed(study)).random(trials)
    fixed = {key: r.value(0.0) for key, r in space.items() if key not in keys}
    return [{**{key: space[key].value(float(u)) for key, u in zip(keys, row, strict=True)}, **fixed} for row in points]


def rung_schedule(epochs: int, trials: int, eta: int | None) -> list[tuple[int, int]]:
    """[(epochs, trials kept)] per rung of successive halving; one rung (the whole budget) without it.

    With K = floor(log_eta(min(epochs, trials))), rung k trains the best trials // eta^k trials for
    epochs // eta^(K-k) epochs, so the last rung trains trials // eta^K at the full epochs.
    """
    if not eta:
        return [(epochs, trials)]
    top = 0
    while eta ** (top + 1) <= min(epochs, trials):
        top += 1
    return [(epochs // eta ** (top - k), max(1, trials // eta**k)) for k in range(top + 1)]


# -- planning ------------------------------------------------------------------------------------------


Keep = Mapping[tuple[str, str, str], Iterable[int]]  # (method, model, dataset) -> the trials a rung runs


def _values_key(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), sort_keys=True, default=str)


@dataclass(frozen=True)
class TrialCell(Cell):
    """A cell of one trial: an ordinary cell whose label names its study, trial and rung."""

    study: str = ""
    trial: int = 0

    @property
    def label(self) -> str:
        epochs = dict(self.overrides).get("epochs")
        return f"{super().label} [{self.study} trial {self.trial} @{epochs}ep]"


@dataclass
class TrialSpec(SweepSpec):
    """A sweep of given cells (a rung's trials): what run_sweep, dry_run and every engine take."""

    trial_cells: list[Cell] = field(default_factory=list)

    def cells(self) -> list[Cell]:
        return list(self.trial_cells)


@dataclass
class MethodSpace:
    method: str
    space: dict[str, Range]
    trials: list[dict[str, Any]]  # the drawn configs, trial i at index i


@dataclass
class StudyPlan:
    """A checked study: every method's space and trials, and the rung schedule."""

    spec: TuneSpec
    spaces: dict[str, MethodSpace]
    rungs: list[tuple[int, int]]

    @property
    def workloads(self) -> list[tuple[str, str]]:
        return [(model, dataset) for dataset in self.spec.datasets for model in self.spec.models]

    def trials_of(self, keep: Keep | None = None) -> Iterable[tuple[str, str, str, int]]:
        """(method, model, dataset, trial) of every trial in `keep` ({(method, model, dataset): trials}, default all)."""
        for method, ms in self.spaces.items():
            for model, dataset in self.workloads:
                wanted = range(len(ms.trials)) if keep is None else keep.get((method, model, dataset), ())
                for i in sorted(wanted):
                    yield method, model, dataset, i

    def cells(self, epochs: int, keep: Keep | None = None) -> list[TrialCell]:
        """The cells of the trials in `keep` at `epochs`, one per tuning seed.

        Trials that drew the same values share their cells (they are the same science), so a cell
        is the first such trial's."""
        s = self.spec
        out: list[TrialCell] = []
        seen: set[tuple[str, str, str, str]] = set()
        for method, model, dataset, i in self.trials_of(keep):
            values = self.spaces[method].trials[i]
            same = (method, model, dataset, _values_key(values))
            if same in seen:
                continue
            seen.add(same)
            grid = SweepSpec(
                methods=[method],
                models=[model],
                datasets=[dataset],
                seeds=list(s.seeds),
                presets=list(s.presets),
                overrides={**s.overrides, "epochs": epochs, **values},
            )
            out += [TrialCell(**{f.name: getattr(c, f.name) for f in dataclasses.fields(Cell)}, study=s.study, trial=i) for c in grid.cells()]
        return out

    def sweep(self, cells: list[TrialCell]) -> TrialSpec:
        s = self.spec
        return TrialSpec(
            methods=list(self.spaces),
            models=list(s.models),
            datasets=list(s.datasets),
            seeds=list(s.seeds),
            presets=list(s.presets),
            overrides=dict(s.overrides),
            store=s.store,
            engine=s.engine,
            resources=s.resources,
            data_dir=s.data_dir,
            plugins=list(s.plugins),
            pack=s.pack,
            slurm=s.slurm,
            trial_cells=cells,
        )

    def definition(self) -> dict[str, Any]:
        """What the study is, as its file records it (compared when the same study is run again)."""
        s = self.spec
        return {
            "budget": {
                "trials": s.trials,
                "seeds": list(s.seeds),
                "epochs": s.epochs,
                "halving": s.halving,
                "rungs": [{"epochs": e, "trials": n} for e, n in self.rungs],
            },
            "sampler": {"sequence": SEQUENCE, "scramble": True, "seed": sampler_seed(s.study), "dimensions": "the searched keys, sorted"},
            "presets": list(s.presets),
            "overrides": dict(s.overrides),
            "workloads": [workload(m, d) for m, d in self.workloads],
            "spaces": {m: space_json(ms.space) for m, ms in self.spaces.items()},
        }


def _check_key(method: Any, key: str, r: Range, where: str) -> None:
    """A searched key must be the method's own config key, a hyperparameter, and every draw valid."""
    from pydantic import ValidationError

    from seedbench.config import PLACEMENT_KEYS

    if key in NOT_TUNABLE or key in PLACEMENT_KEYS:
        raise ConfigError(
            f"{where}: {key} is part of the study's budget, workload or placement, not a hyperparameter; set it for every trial with --set or --epochs"
        )
    if key not in method.config.model_fields:
        import difflib

        close = difflib.get_close_matches(key, list(method.config.model_fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: method {method.name} has no config key {key!r}{hint}")
    for value in [*r.bounds(), r.value(0.37)]:  # the ends and one inner draw (a float drawn for an integer key fails here)
        try:
            method.config.model_validate({key: value})
        except ValidationError as exc:
            raise ConfigError(
                f"{where}: {key}={value!r} is not valid for method {method.name} ({exc.errors()[0]['msg']}); narrow the range"
            ) from None


def method_space(name: str, study_space: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> dict[str, Range]:
    """A method's declared space with the study's ranges over it, every key checked."""
    from seedbench.registry import resolve_method

    method, patch = resolve_method(name)
    if patch or method.name != name:
        fixed = ", ".join(f"--set {k}={v}" for k, v in patch.items())
        raise ConfigError(f"{name} is an alias of {method.name} ({fixed}); tune {method.name} with those --set flags instead")
    space = parse_space(dict(method.tunable), f"method {name}: tunable")
    space.update(parse_space(study_space or {}, f"space.{name}"))
    for key, r in space.items():
        _check_key(method, key, r, f"space.{name}.{key}" if key in (study_space or {}) else f"method {name}: tunable {key}")
        if key in overrides:
            raise ConfigError(f"{key} is both searched (the space of {name}) and set for every trial (--set {key}=...); drop one")
    if not searched(space):
        raise ConfigError(
            f"method {name} has nothing to search: it declares no tunable ranges (Method.tunable) or the study fixes them all; "
            f"give it some in the tune file, e.g. space: {{{name}: {{lr: {{log_uniform: [0.001, 1]}}}}}}"
        )
    return space


def plan_study(spec: TuneSpec) -> StudyPlan:
    """Check everything the user gave, before a folder exists; draw every method's trials."""
    from seedbench.registry import load_plugins

    check_study_name(spec.study)
    _positive(spec.trials, "--trials")
    _positive(spec.epochs, "--epochs")
    if spec.halving is not None:
        _positive(spec.halving, "--halving", 2)
    if not spec.seeds:
        raise ConfigError("a tuning study needs tuning seeds, e.g. --seeds 100-102 (the final study then runs on others)")
    if not (spec.methods and spec.models and spec.datasets):
        raise ConfigError("a tuning study needs --method, --model and --dataset")
    if len(set(spec.methods)) != len(spec.methods):
        raise ConfigError(f"--method {','.join(spec.methods)}: a method is named twice")
    if "epochs" in spec.overrides:
        raise ConfigError("the study's epochs are its budget: give --epochs (or epochs: in the tune file), not --set epochs=...")
    for preset in spec.presets:
        if preset.startswith(PREFIX):
            raise ConfigError(f"--preset {preset}: a tuning study starts from the methods' declared spaces, not from another study's choices")
    for key, value in spec.overrides.items():
        finite(value, key)
    load_plugins(spec.plugins)
    extra = sorted(set(spec.space) - set(spec.methods))
    if extra:
        raise ConfigError(
            f"space names {', '.join(extra)}, which the study does not tune (methods: {', '.join(spec.methods)}); drop it or add the method"
        )
    spaces = {}
    for name in spec.methods:
        raw = spec.space.get(name)
        if raw is not None and not isinstance(raw, Mapping):
            raise ConfigError(f"space.{name}: map config keys to ranges, e.g. {{lr: {{log_uniform: [0.001, 1]}}}}")
        space = method_space(name, raw, spec.overrides)
        spaces[name] = MethodSpace(name, space, draw_trials(spec.study, space, spec.trials))
    return StudyPlan(spec, spaces, rung_schedule(spec.epochs, spec.trials, spec.halving))


def check_cells(plan: StudyPlan) -> None:
    """Resolve every trial's cells at the first and the last rung (names, values, datasets, fit) on the driver."""
    from seedbench.sweep.plan import resolve_grid

    placement = {"data_dir": plan.spec.data_dir} if plan.spec.data_dir else {}
    epochs = sorted({plan.rungs[0][0], plan.rungs[-1][0]})
    resolve_grid([c for e in epochs for c in plan.cells(e)], placement)


def check_existing(plan: StudyPlan, store: Path, replace: bool) -> None:
    """A study name names one definition: running it again resumes it; another definition needs --replace."""
    path = study_path(store, plan.spec.study)
    if replace or not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        before = {k: old.get(k) for k in ("budget", "sampler", "presets", "overrides", "workloads")}
        before["spaces"] = {m: v.get("space") for m, v in old.get("methods", {}).items()}
    except (OSError, ValueError, AttributeError):
        before = {}
    now = plan.definition()
    if before != now:
        changed = sorted(k for k in now if before.get(k) != now[k]) or ["its file"]
        raise ConfigError(
            f"study {plan.spec.study} exists in the store with another {', '.join(changed)}; "
            f"give this study another --study name, or pass --replace to overwrite it (sweeps that used tuned:{plan.spec.study} keep their cells)"
        )


# -- running and selection -----------------------------------------------------------------------------


@dataclass
class TrialScore:
    method: str
    model: str
    dataset: str
    trial: int
    epochs: int
    seeds: dict[int, float | None] = field(default_factory=dict)  # tuning seed -> final val_acc (None: none measured)
    status: dict[int, str] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Mean over the tuning seeds of the final validation accuracy, a missing one counted as 0."""
        values = [v if v is not None and math.isfinite(v) else 0.0 for v in self.seeds.values()]
        return sum(values) / len(values) if values else 0.0

    @property
    def spread(self) -> float:
        values = [v if v is not None and math.isfinite(v) else 0.0 for v in self.seeds.values()]
        if len(values) < 2:
            return 0.0
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def read_scores(plan: StudyPlan, cells: list[TrialCell], folders: Mapping[str, Path | None], epochs: int, keep: Keep | None) -> Scores:
    """Every trial's final validation accuracy per seed, from its cells' records (val_acc and status only)."""
    from seedbench.record import read_record_dict

    by_values: dict[tuple[str, str, str, str], TrialScore] = {}
    for cell in cells:
        folder = folders.get(cell.label)
        record = read_record_dict(folder) if folder is not None else {}
        same = (cell.method, cell.model, cell.dataset, _values_key(plan.spaces[cell.method].trials[cell.trial]))
        score = by_values.setdefault(same, TrialScore(cell.method, cell.model, cell.dataset, cell.trial, epochs))
        val = record.get(METRIC)
        score.seeds[cell.seed] = float(val) if isinstance(val, int | float) and not isinstance(val, bool) else None
        score.status[cell.seed] = str(record.get("status", "missing"))
    out: Scores = {}
    for method, model, dataset, i in plan.trials_of(keep):
        shared = by_values[(method, model, dataset, _values_key(plan.spaces[method].trials[i]))]
        out[(method, model, dataset, i)] = dataclasses.replace(shared, trial=i, seeds=dict(shared.seeds), status=dict(shared.status))
    return out


def best_trials(scores: Iterable[TrialScore], keep: int) -> list[int]:
    """The `keep` trials with the highest score; ties go to the earlier trial (deterministic)."""
    ranked = sorted(scores, key=lambda s: (-s.score, s.trial))
    return [s.trial for s in ranked[:keep]]


Scores = dict[tuple[str, str, str, int], "TrialScore"]


@dataclass
class TuneResult:
    """What `seedbench tune` / `Tune.run()` did: the study's file (when every trial finished) and the sweeps' counts."""

    study: str
    store: Path
    path: Path | None = None
    doc: dict[str, Any] | None = None
    trained: int = 0
    reused: int = 0
    diverged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped_failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    engine: str = "local"

    @property
    def ok(self) -> bool:
        return self.doc is not None and not self.failed and not self.skipped_failed

    @property
    def version(self) -> str | None:
        return self.doc["version"] if self.doc else None

    @property
    def preset(self) -> str:
        """What the final sweep passes: `--preset tuned:<study>` (presets=["tuned:<study>"] in the API)."""
        return PREFIX + self.study

    @property
    def chosen(self) -> dict[str, dict[str, dict[str, Any]]]:
        """{method: {workload: chosen values}}."""
        if not self.doc:
            return {}
        return {m: {w: dict(r["chosen"]) for w, r in v["workloads"].items()} for m, v in self.doc["methods"].items()}

    def trials(self):
        """Every trial as a DataFrame row (seedbench.analysis.tuning.tuning_trials)."""
        from seedbench.analysis.tuning import tuning_trials

        return tuning_trials(self.doc or {})

    def summary(self):
        """Per method and workload: space, budget, chosen values, validation accuracy (seedbench.analysis.tuning.tuning_summary)."""
        from seedbench.analysis.tuning import tuning_summary

        return tuning_summary(self.doc or {})


def run_tune(
    spec: TuneSpec,
    *,
    engine: str | None = None,
    address: str | None = None,
    resources: str | dict | None = None,
    retry_failed: bool = False,
    replace: bool = False,
    quiet: bool = False,
    console: Any = None,
    argv: list[str] | None = None,
    rerun_stale: bool = False,
    keep_stale: bool = False,
) -> TuneResult:
    """Run the study's trials rung by rung, select on validation, write `<store>/tuned/<study>.json`."""
    from rich.console import Console

    from seedbench.sweep.run import run_sweep
    from seedbench.sweep.runners.store_context import check_store_writable, store_dir

    console = console or Console(stderr=True)
    plan = plan_study(spec)
    check_cells(plan)
    store = store_dir(spec.store)
    check_existing(plan, store, replace)
    check_store_writable(spec.store)
    engine = engine or spec.engine or ("ray" if address else "local")
    result = TuneResult(study=spec.study, store=store, engine=engine)
    started = time.time()
    keep: dict[tuple[str, str, str], list[int]] | None = None
    scores: dict[tuple[str, str, str, int], list[TrialScore]] = {}  # trial -> its scores at the rungs it ran
    for k, (epochs, kept) in enumerate(plan.rungs):
        cells = plan.cells(epochs, keep)
        if not quiet:
            rung = f"rung {k + 1}/{len(plan.rungs)}: " if len(plan.rungs) > 1 else ""
            trials = kept if keep is not None else spec.trials
            console.print(
                f"[bold]tune {spec.study}[/] {rung}{len(plan.spaces)} methods x {len(plan.workloads)} workloads x {trials} trials "
                f"x {len(spec.seeds)} seeds at {epochs} epochs ({len(cells)} cells)",
                highlight=False,
            )
        summary = run_sweep(
            plan.sweep(cells),
            retry_failed=retry_failed,
            console=console,
            quiet=quiet,
            engine=engine,
            address=address,
            resources=resources,
            argv=argv,
            rerun_stale=rerun_stale,
            keep_stale=keep_stale,
        )
        result.trained += summary.trained
        result.reused += summary.reused
        result.diverged += summary.diverged
        result.failed += summary.failed
        result.skipped_failed += summary.skipped_failed
        result.store = summary.store
        if not summary.ok:  # an unfinished trial would make the budgets unequal: no selection, no file
            result.seconds = time.time() - started
            return result
        rung_scores = read_scores(plan, cells, summary.folders, epochs, keep)
        for key, score in rung_scores.items():
            scores.setdefault(key, []).append(score)
        if k + 1 < len(plan.rungs):  # successive halving: the best trials of each method and workload go on
            ranked: dict[tuple[str, str, str], list[TrialScore]] = {}
            for (method, model, dataset, _), score in rung_scores.items():
                ranked.setdefault((method, model, dataset), []).append(score)
            keep = {group: best_trials(group_scores, plan.rungs[k + 1][1]) for group, group_scores in ranked.items()}
    result.doc = study_document(plan, scores)
    result.path = write_study_file(result.store, result.doc)
    result.seconds = time.time() - started
    return result


def study_document(plan: StudyPlan, scores: Mapping[tuple[str, str, str, int], list[TrialScore]]) -> dict[str, Any]:
    """The study's file: its definition, every trial's validation accuracies, and the winners."""
    definition = plan.definition()
    final = plan.rungs[-1][0]
    methods: dict[str, Any] = {}
    for method, ms in plan.spaces.items():
        workloads = {}
        for model, dataset in plan.workloads:
            rows = []
            for i, values in enumerate(ms.trials):
                runs = scores.get((method, model, dataset, i), [])
                rows.append(
                    {
                        "trial": i,
                        "values": values,
                        "epochs": runs[-1].epochs if runs else None,
                        METRIC: runs[-1].score if runs else None,
                        "rungs": [
                            {
                                "epochs": s.epochs,
                                METRIC: s.score,
                                "std": s.spread,
                                "seeds": {str(k): v for k, v in sorted(s.seeds.items())},
                                "status": sorted(set(s.status.values())),
                            }
                            for s in runs
                        ],
                    }
                )
            finalists = [runs[-1] for i in range(len(ms.trials)) if (runs := scores.get((method, model, dataset, i))) and runs[-1].epochs == final]
            winner = best_trials(finalists, 1)[0]
            best = scores[(method, model, dataset, winner)][-1]
            workloads[workload(model, dataset)] = {
                "chosen": dict(ms.trials[winner]),
                "trial": winner,
                METRIC: best.score,
                "std": best.spread,
                "trials": rows,
            }
        methods[method] = {"space": definition["spaces"][method], "workloads": workloads}
    return {
        "format": FORMAT,
        "study": plan.spec.study,
        "selection": {
            "metric": METRIC,
            "statistic": "mean over the tuning seeds of the final validation accuracy (a seed without one counts 0)",
            "test_accuracy": "never read",
            "ties": "the earlier trial",
        },
        **{k: v for k, v in definition.items() if k != "spaces"},
        "plugins": list(plan.spec.plugins),
        "methods": methods,
        "written_at": time.time(),
    }


def write_study_file(store: Path, doc: dict[str, Any]) -> Path:
    from seedbench.sweep.tuned import write_study

    return write_study(store, doc)


@dataclass
class TuneDryRun:
    """What `seedbench tune` would run: the schedule, the trial cells of the first rung, new vs reused."""

    study: str
    methods: list[str]
    trials: int
    seeds: list[int]
    rungs: list[tuple[int, int]]
    first: Any  # seedbench.sweep.run.DryRun of the first rung

    def describe(self) -> str:
        rungs = ", ".join(f"{n} trials x {e} epochs" for e, n in self.rungs)
        later = " (later rungs depend on the first's results)" if len(self.rungs) > 1 else ""
        return (
            f"tune {self.study}: {len(self.methods)} methods ({', '.join(self.methods)}), each {self.trials} trials x "
            f"{len(self.seeds)} tuning seeds ({seed_text(self.seeds)}); rungs: {rungs}{later}. First rung: {self.first.describe()}"
        )


def dry_run_tune(
    spec: TuneSpec, retry_failed: bool = False, replace: bool = False, rerun_stale: bool = False, keep_stale: bool = False
) -> TuneDryRun:
    from seedbench.sweep.run import dry_run
    from seedbench.sweep.runners.store_context import store_dir

    plan = plan_study(spec)
    check_cells(plan)
    check_existing(plan, store_dir(spec.store), replace)
    first = dry_run(plan.sweep(plan.cells(plan.rungs[0][0])), retry_failed=retry_failed, rerun_stale=rerun_stale, keep_stale=keep_stale)
    return TuneDryRun(spec.study, list(plan.spaces), spec.trials, list(spec.seeds), plan.rungs, first)


# -- the Python API ------------------------------------------------------------------------------------


def _names(value: str | Iterable[str]) -> list[str]:
    return split_list(value) if isinstance(value, str) else [str(v) for v in value]


class Tune:
    """A tuning study as a Python object; `.run()` tunes, `.dry_run()` says what it would run.

        from seedbench import Sweep, Tune
        study = Tune(["sgd", "rbd"], "fc", "digits", trials=16, seeds="100-102", epochs=5, study="lr-digits").run()
        Sweep(["sgd", "rbd"], "fc", "digits", seeds=range(20), presets=[study.preset]).run()

    It builds the same TuneSpec as `seedbench tune`, so both run (and reuse) the same cells.
    """

    def __init__(
        self,
        methods: str | Iterable[str],
        models: str | Iterable[str] = ("fc",),
        datasets: str | Iterable[str] = ("digits",),
        *,
        trials: int,
        seeds: int | str | Iterable[int],
        epochs: int,
        study: str,
        space: Mapping[str, Mapping[str, Any]] | None = None,
        presets: str | Iterable[str] = (),
        overrides: Mapping[str, Any] | None = None,
        halving: int | None = None,
        store: str | None = None,
        data_dir: str | None = None,
        plugins: str | Iterable[str] = (),
        resources: Mapping[str, Any] | None = None,
        pack: int | str | None = None,
    ):
        self.spec = TuneSpec(
            study=study,
            methods=_names(methods),
            models=_names(models),
            datasets=_names(datasets),
            trials=trials,
            seeds=parse_seeds(seeds if isinstance(seeds, int | str) else list(seeds), "seeds"),
            epochs=epochs,
            space={k: dict(v) for k, v in (space or {}).items()},
            presets=[p.lstrip("~") for p in _names(presets)],
            overrides=dict(overrides or {}),
            halving=halving,
            store=store,
            data_dir=data_dir,
            plugins=_names(plugins),
            resources=dict(resources) if resources else None,
            pack=pack,
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> Tune:
        tune = cls.__new__(cls)
        tune.spec = load_tune_spec(Path(path))
        return tune

    def plan(self) -> StudyPlan:
        """Check the study and draw its trials without running anything."""
        plan = plan_study(self.spec)
        check_cells(plan)
        return plan

    def dry_run(self, retry_failed: bool = False, replace: bool = False) -> TuneDryRun:
        return dry_run_tune(self.spec, retry_failed=retry_failed, replace=replace)

    def run(
        self,
        engine: str = "local",
        *,
        address: str | None = None,
        retry_failed: bool = False,
        replace: bool = False,
        quiet: bool = True,
        rerun_stale: bool = False,
        keep_stale: bool = False,
    ) -> TuneResult:
        """Run the study's trials (finished ones reused), select on validation, write the study's file."""
        return run_tune(
            self.spec,
            engine=engine,
            address=address,
            retry_failed=retry_failed,
            replace=replace,
            quiet=quiet,
            rerun_stale=rerun_stale,
            keep_stale=keep_stale,
        )

    def __repr__(self) -> str:
        s = self.spec
        return f"Tune(study={s.study!r}, methods={s.methods}, trials={s.trials}, seeds={seed_text(s.seeds)}, epochs={s.epochs})"


def tune(
    methods: str | Iterable[str],
    models: str | Iterable[str] = ("fc",),
    datasets: str | Iterable[str] = ("digits",),
    *,
    engine: str = "local",
    address: str | None = None,
    retry_failed: bool = False,
    replace: bool = False,
    quiet: bool = True,
    rerun_stale: bool = False,
    keep_stale: bool = False,
    **study: Any,
) -> TuneResult:
    """`Tune(...).run(...)` in one call; the keyword arguments are Tune's (trials, seeds, epochs, study, ...)."""
    return Tune(methods, models, datasets, **study).run(
        engine, address=address, retry_failed=retry_failed, replace=replace, quiet=quiet, rerun_stale=rerun_stale, keep_stale=keep_stale
    )
