"""What a sweep asks Slurm for, and the driver's check of it before anything is submitted.

Options come from three places, later ones winning: a cell's placement (`num_cpus`, `num_gpus`,
`resources`, and a preset's `slurm:` mapping), the sweep YAML's `slurm:` mapping, and `--slurm
key=value` on the command line. Like every placement key they never touch a cell's identity: the
same grid submitted with another partition or time limit reuses its finished cells.

The driver checks them against the live cluster (sinfo, scontrol, and `sbatch --test-only` for what
only Slurm can judge: accounts, QOS, features) so that a typo is one line and exit status 2 before
a run folder exists, not a job that pends forever.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from seedbench.errors import ConfigError

# key -> what it takes (the help text and the error messages quote these)
SLURM_KEYS: dict[str, str] = {
    "partition": "a partition, e.g. partition=gpu",
    "time": "the time limit per array task in minutes or [D-]HH:MM[:SS], e.g. time=120 or time=2:00:00",
    "cpus": "CPUs per array task, e.g. cpus=4 (default: the cell's num_cpus, rounded up)",
    "gpus": "GPUs per array task, e.g. gpus=1 (default: the cell's num_gpus, rounded up)",
    "mem": "memory per array task, e.g. mem=8G or mem=500M (a bare number is GB)",
    "account": "the account to charge, e.g. account=mylab",
    "qos": "the quality of service, e.g. qos=preemptible",
    "constraint": "node features, e.g. constraint=a100",
    "cells_per_task": "cells one array task trains one after another (default: sized by the cells' expected time)",
    "array_parallelism": "array tasks running at once, Slurm's %N (default: as many as Slurm starts)",
}
SBATCH_FLAGS = {"partition": "partition", "account": "account", "qos": "qos", "constraint": "constraint"}
INFINITE_TIME_MIN = 7 * 24 * 60  # asked for on a partition without a limit (submitit always sets one)
TIMEOUT = 30.0  # seconds for one Slurm client command


@dataclass(frozen=True)
class SlurmOptions:
    """One array's sbatch options (every task of an array shares them) plus how cells are grouped into tasks."""

    partition: str | None = None
    time: int | None = None  # minutes
    cpus: int = 1
    gpus: int = 0
    mem_mb: int | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gres: str | None = None  # a cell's custom resources, e.g. {"IPU": 1} -> IPU:1
    cells_per_task: int | None = None
    array_parallelism: int | None = None

    def sbatch_flags(self) -> list[str]:
        flags = [f"--{SBATCH_FLAGS[k]}={getattr(self, k)}" for k in SBATCH_FLAGS if getattr(self, k)]
        flags.append(f"--cpus-per-task={self.cpus}")
        if self.time:
            flags.append(f"--time={self.time}")
        if self.gpus:
            flags.append(f"--gpus-per-node={self.gpus}")
        if self.mem_mb:
            flags.append(f"--mem={self.mem_mb}M")
        if self.gres:
            flags.append(f"--gres={self.gres}")
        return flags

    def describe(self) -> str:
        shown = {k: getattr(self, k) for k in ("partition", "time", "cpus", "gpus", "account", "qos", "constraint", "gres")}
        shown["mem"] = f"{self.mem_mb}M" if self.mem_mb else None
        return " ".join(f"{k}={v}" for k, v in shown.items() if v not in (None, 0) or k == "cpus")

    def submitit_parameters(self, time_min: int) -> dict[str, Any]:
        """For submitit's SlurmExecutor.update_parameters (its names, not sbatch's)."""
        params: dict[str, Any] = {"time": time_min, "cpus_per_task": self.cpus}
        for key in SBATCH_FLAGS:
            if getattr(self, key):
                params[key] = getattr(self, key)
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.mem_mb:
            params["mem"] = f"{self.mem_mb}M"
        if self.gres:
            params["gres"] = self.gres
        if self.array_parallelism:
            params["array_parallelism"] = self.array_parallelism
        # USR2 (submitit's preemption and time-out signal) comes this long before the limit: the cell
        # checkpoints and the job requeues itself. Never more than a quarter of a short limit.
        params["signal_delay_s"] = max(10, min(90, time_min * 60 // 4))
        return params


def _minutes(text: str) -> int:
    """Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S -> whole minutes (at least 1)."""
    text = text.strip()
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
        parts = [int(p) for p in text.split(":")]
        hours, minutes, seconds = (parts + [0, 0, 0])[:3]
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        elif len(parts) == 3:
            hours, minutes, seconds = parts
        else:
            raise ValueError(text)
    if min(days, hours, minutes, seconds) < 0:
        raise ValueError(text)
    return max(1, days * 1440 + hours * 60 + minutes + math.ceil(seconds / 60))


def _mem_mb(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, unit = float(value), "G"
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", str(value), re.IGNORECASE)
        if not match:
            raise ValueError(value)
        number, unit = float(match.group(1)), (match.group(2) or "G").upper()
    mb = number * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[unit]
    if mb <= 0:
        raise ValueError(value)
    return max(1, math.ceil(mb))


def _positive(value: Any, allow_zero: bool = False) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    number = int(str(value).strip()) if not isinstance(value, int) else value
    if number < (0 if allow_zero else 1):
        raise ValueError(value)
    return number


def _name(value: Any) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(value)
    return text


_PARSERS = {
    "partition": _name,
    "time": lambda v: _minutes(str(v)),
    "cpus": _positive,
    "gpus": lambda v: _positive(v, allow_zero=True),
    "mem": _mem_mb,
    "account": _name,
    "qos": _name,
    "constraint": _name,
    "cells_per_task": _positive,
    "array_parallelism": _positive,
}


def check_slurm_mapping(values: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """Keys and values of a `slurm:` mapping (YAML, preset, or the parsed --slurm flags), typed.

    `where` names the source in the one-line error (e.g. "--slurm", "the sweep YAML's slurm").
    """
    out: dict[str, Any] = {}
    for key, value in dict(values or {}).items():
        key = str(key).strip()
        if key not in SLURM_KEYS:
            close = difflib.get_close_matches(key, SLURM_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; keys: {', '.join(SLURM_KEYS)}")
        try:
            parsed = _PARSERS[key](value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {key}={value!r} is not valid; give {SLURM_KEYS[key]}") from None
        out["mem_mb" if key == "mem" else key] = parsed
    return out


def parse_slurm_flags(pairs: Iterable[str] | None) -> dict[str, Any]:
    """`--slurm key=value` (repeatable) -> a typed mapping; a malformed pair or unknown key is a ConfigError."""
    raw: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm {pair!r}: use KEY=VALUE, e.g. --slurm partition=gpu --slurm time=120")
        raw[key.strip()] = value
    return check_slurm_mapping(raw, "--slurm")


def options_for(request: Any, cell_slurm: Mapping[str, Any] | None, sweep_slurm: Mapping[str, Any] | None) -> SlurmOptions:
    """A cell's options: its request (num_cpus, num_gpus, custom resources), then its preset's `slurm`, then the sweep's."""
    gres = ",".join(f"{name}:{math.ceil(count)}" for name, count in request.custom) or None
    options = SlurmOptions(cpus=max(1, math.ceil(request.num_cpus)), gpus=math.ceil(request.num_gpus), gres=gres)
    for layer in (cell_slurm, sweep_slurm):
        if layer:
            options = replace(options, **{k: v for k, v in layer.items() if k in SlurmOptions.__dataclass_fields__})
    return options


# -- the live cluster ---------------------------------------------------------------------------------


@dataclass
class Partition:
    name: str
    nodes: int
    max_time: int | None  # minutes; None: no limit
    default_time: int | None
    cpus: int  # the largest node's CPUs
    mem_mb: int  # the largest node's memory
    gpus: int  # the largest node's GPUs (gres gpu)


@dataclass
class ClusterInfo:
    partitions: dict[str, Partition] = field(default_factory=dict)
    default_partition: str | None = None
    max_array_size: int = 1001
    max_job_count: int = 10000  # every array task counts against it, pending or not (slurm.conf MaxJobCount)

    def partition(self, name: str | None) -> Partition | None:
        return self.partitions.get(name or self.default_partition or "")

    def time_for(self, options: SlurmOptions) -> int:
        """The limit to ask for: the option, else the partition's default, else its maximum, else a week."""
        if options.time:
            return options.time
        part = self.partition(options.partition)
        if part is not None:
            return part.default_time or part.max_time or INFINITE_TIME_MIN
        return INFINITE_TIME_MIN


def run_client(args: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """A Slurm client command; a missing binary or a hang becomes a ConfigError naming the fix."""
    if shutil.which(args[0]) is None:
        raise ConfigError(
            f"--engine slurm: {args[0]} not found on this machine; run the sweep where Slurm's clients are installed "
            "(or `make slurm-up` for a local Slurm)"
        )
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"--engine slurm: `{' '.join(args[:3])} ...` did not answer within {timeout:g} s; is slurmctld running?") from None


def unreachable(result: subprocess.CompletedProcess) -> ConfigError:
    first = (result.stderr or result.stdout or "no answer").strip().splitlines()[0]
    hint = "is slurmctld running and SLURM_CONF set?"
    local = local_conf()
    if not os.environ.get("SLURM_CONF") and local:
        hint = f"for the local Slurm of `make slurm-up`: export SLURM_CONF={local}"
    return ConfigError(f"--engine slurm: cannot reach Slurm ({first}); {hint}")


def local_conf() -> str | None:
    """The config of cluster/slurm/up.sh's local Slurm, when one is there (named in hints only)."""
    path = os.path.join(os.environ.get("SEEDBENCH_SLURM_DIR") or f"/tmp/seedbench-slurm-{os.getuid()}", "slurm.conf")
    return path if os.path.isfile(path) else None


def _time_field(text: str) -> int | None:
    text = text.strip().lower()
    if text in ("infinite", "unlimited", "n/a", "none", ""):
        return None
    try:
        return _minutes(text)
    except ValueError:
        return None


def _gpu_count(gres: str) -> int:
    count = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            count = max(count, int(parts[-1]))
    return count


def cluster_info() -> ClusterInfo:
    """Partitions (nodes, time limits, the largest node) and MaxArraySize, from sinfo and scontrol."""
    conf = os.environ.get("SLURM_CONF")
    if conf and not os.path.isfile(conf):  # Slurm's clients would retry reading it for a minute
        local = local_conf()
        hint = f"export SLURM_CONF={local} (the local Slurm of `make slurm-up`)" if local else "point it at the cluster's slurm.conf, or unset it"
        raise ConfigError(f"--engine slurm: SLURM_CONF={conf} does not exist; {hint}")
    result = run_client(["sinfo", "--noheader", "--format=%P|%D|%l|%L|%c|%m|%G"])
    if result.returncode != 0:
        raise unreachable(result)
    info = ClusterInfo()
    for line in result.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 7:
            continue
        name, nodes, max_time, default_time, cpus, mem, gres = fields
        default = name.endswith("*")
        name = name.rstrip("*")
        cpus_n = int(re.sub(r"\D", "", cpus) or 0)
        mem_n = int(re.sub(r"\D", "", mem) or 0)
        part = info.partitions.get(name)
        if part is None:  # sinfo prints one line per partition and node configuration
            part = info.partitions[name] = Partition(name, 0, _time_field(max_time), _time_field(default_time), 0, 0, 0)
        part.nodes += int(nodes or 0)
        part.cpus, part.mem_mb, part.gpus = max(part.cpus, cpus_n), max(part.mem_mb, mem_n), max(part.gpus, _gpu_count(gres))
        if default:
            info.default_partition = name
    config = run_client(["scontrol", "show", "config"])
    for key, attr in (("MaxArraySize", "max_array_size"), ("MaxJobCount", "max_job_count")):
        match = re.search(rf"^{key}\s*=\s*(\d+)", config.stdout, re.MULTILINE)
        if match:
            setattr(info, attr, int(match.group(1)))
    return info


def check_options(groups: Mapping[SlurmOptions, list[str]], info: ClusterInfo) -> None:
    """Refuse, in one line, options the cluster cannot honour; the first failing group names its first cell."""
    names = ", ".join(sorted(info.partitions)) or "none"
    for options, labels in groups.items():
        first = labels[0] if labels else "a cell"
        more = f" (and {len(labels) - 1} more cells)" if len(labels) > 1 else ""
        who = f"{first}{more}"
        if options.partition and options.partition not in info.partitions:
            close = difflib.get_close_matches(options.partition, info.partitions, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{who}: partition={options.partition}: Slurm has no such partition{hint}; partitions: {names}")
        part = info.partition(options.partition)
        if part is None:
            raise ConfigError(f"--engine slurm: the cluster has no default partition; give --slurm partition=NAME (partitions: {names})")
        if options.time and part.max_time and options.time > part.max_time:
            raise ConfigError(f"{who}: time={options.time} minutes is over partition {part.name}'s limit of {part.max_time}; lower --slurm time")
        if part.cpus and options.cpus > part.cpus:
            raise ConfigError(
                f"{who}: asks for {options.cpus} CPUs per task, but partition {part.name}'s largest node has {part.cpus}; "
                "lower --slurm cpus or num_cpus"
            )
        if part.mem_mb and options.mem_mb and options.mem_mb > part.mem_mb:
            raise ConfigError(
                f"{who}: asks for {options.mem_mb} MB per task, but partition {part.name}'s largest node has {part.mem_mb} MB; lower --slurm mem"
            )
        if options.gpus > part.gpus:
            have = f"its nodes have at most {part.gpus}" if part.gpus else "it has no GPUs"
            raise ConfigError(f"{who}: asks for {options.gpus} GPUs per task, but partition {part.name} {have}; lower --slurm gpus or num_gpus")
        # what only Slurm can judge (accounts, QOS, features, gres): ask it without submitting anything
        test = run_client(["sbatch", "--test-only", f"--time={info.time_for(options)}", *options.sbatch_flags(), "--wrap=true"])
        if test.returncode != 0:
            reason = (test.stderr or test.stdout).strip().splitlines()
            reason_text = reason[-1].removeprefix("sbatch: error: ") if reason else "refused"
            raise ConfigError(f"{who}: Slurm refuses {options.describe()} ({reason_text}); fix --slurm or the preset")


# -- where the store lives -----------------------------------------------------------------------------

SHARED_FILESYSTEMS = {
    "nfs",
    "nfs4",
    "lustre",
    "gpfs",
    "beegfs",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "fuse.sshfs",
    "fuse.ceph-fuse",
    "fuse.juicefs",
    "panfs",
    "wekafs",
    "orangefs",
    "pvfs2",
    "afs",
    "virtiofs",
}


def filesystem_of(path: str | os.PathLike) -> tuple[str, str]:
    """(mount point, filesystem type) of the deepest mount holding `path`, from /proc/mounts."""
    target = os.path.realpath(path)
    best = ("/", "unknown")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = parts[1].replace("\\040", " ")
                if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
                    best = (point, parts[2])
    except OSError:
        pass
    return best


def node_local_store_warning(store: str | os.PathLike, nodes: int, partition: str) -> str | None:
    """One line when the store is on a filesystem other nodes cannot see and the partition has more than one node."""
    if nodes <= 1:
        return None
    point, kind = filesystem_of(store)
    real = os.path.realpath(store)
    on_tmp = real == "/tmp" or real.startswith("/tmp/")
    if kind in SHARED_FILESYSTEMS and not on_tmp:
        return None
    where = "/tmp" if on_tmp else f"{kind} at {point}"
    return (
        f"store {real} is on {where}, which other nodes do not see, and partition {partition} has {nodes} nodes: "
        "jobs there cannot write their cells; put --store on a filesystem every node mounts (docs/cluster.md)"
    )


# -- the driver's check of a whole sweep -----------------------------------------------------------------


@dataclass
class SlurmPlan:
    """What the driver learned before anything is written: the sweep's options, the cluster, warnings to print."""

    options: dict[str, Any]
    info: ClusterInfo
    warnings: list[str] = field(default_factory=list)


def check_sweep(resolved: list[Any], override: Mapping[str, float] | None, yaml_slurm: Mapping[str, Any] | None, flags: Any, store: Any) -> SlurmPlan:
    """Every cell's Slurm options checked against the live cluster; the store's filesystem against the partitions."""
    import json

    from seedbench.sweep.runners.resources import request_for
    from seedbench.sweep.runners.store_context import store_dir

    given = check_slurm_mapping(flags, "slurm") if isinstance(flags, Mapping) else parse_slurm_flags(flags)
    sweep = {**check_slurm_mapping(yaml_slurm, "the sweep YAML's slurm"), **given}
    info = cluster_info()
    groups: dict[SlurmOptions, list[str]] = {}
    cell_layers: dict[str, dict[str, Any]] = {}
    for r in resolved:
        raw = json.dumps(r.placement.slurm, sort_keys=True)
        if raw not in cell_layers:
            cell_layers[raw] = check_slurm_mapping(r.placement.slurm, f"{r.label}: slurm")
        options = options_for(request_for(r.placement.model_dump(), override), cell_layers[raw], sweep)
        groups.setdefault(options, []).append(r.label)
    check_options(groups, info)
    warnings = []
    for name in sorted({o.partition or info.default_partition or "" for o in groups}):
        part = info.partitions.get(name)
        warning = node_local_store_warning(store_dir(store), part.nodes, part.name) if part else None
        if warning:
            warnings.append(warning)
    return SlurmPlan(sweep, info, warnings)
