"""Weight initializers in torch.nn.init style: in-place functions that take a tensor and a generator.

    from seedbench.init import pa_rewire_
    pa_rewire_(layer.weight, generator=torch.Generator().manual_seed(0))

Nothing here imports machinable; see docs/initializers.md. Exports are listed explicitly so that new
modules (e.g. Walsh codes) add their names here without star-import surprises.
"""

from seedbench.init.baselines import INITIALIZERS, default_bias_, get_initializer, resolve_generator
from seedbench.init.pa_rewire import pa_pass_, pa_rewire_
from seedbench.init.pipeline import DEFAULT_LAYERS, init_model_
from seedbench.init.stabilize import stabilize_strength_
from seedbench.init.strength import strength_score, strength_stats, strengths
from seedbench.init.walsh import CODE_KINDS, code_length, make_codes, onehot_codes, random_codes, walsh_codes

__all__ = [
    "CODE_KINDS",
    "code_length",
    "make_codes",
    "onehot_codes",
    "random_codes",
    "walsh_codes",
    "DEFAULT_LAYERS",
    "INITIALIZERS",
    "default_bias_",
    "get_initializer",
    "init_model_",
    "pa_pass_",
    "pa_rewire_",
    "resolve_generator",
    "stabilize_strength_",
    "strength_score",
    "strength_stats",
    "strengths",
]
