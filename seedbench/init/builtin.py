"""The baseline initializers, registered by name (resolved lazily, so the driver needs no torch)."""

from seedbench.registry import register_initializer

for _name, _attr in {
    "zeros": "zeros_", "normal": "normal_", "uniform": "uniform_", "kaiming_normal": "kaiming_normal_",
    "kaiming_uniform": "kaiming_uniform_", "xavier_normal": "xavier_normal_", "xavier_uniform": "xavier_uniform_",
    "orthogonal": "orthogonal_", "default": "default_",
}.items():
    register_initializer(_name, f"seedbench.init.baselines:{_attr}")
