"""The method, in torch only: barriers, feature maps, ODE solvers and the steering methods.

Nothing here knows about language models, concepts, plots or the app. A steerer is fitted on two
clouds of activations and moves activations: ``make_steerer(name).fit(pos, neg).steer(x, T)``.
"""

from odesteer_core.method.barrier import Barrier
from odesteer_core.method.base import Steerer
from odesteer_core.method.checks import NotFittedError
from odesteer_core.method.features import FEATURE_MAPS, Identity, RandomFourier, TensorSketch
from odesteer_core.method.ode import SOLVERS, integrate, integrate_with_values
from odesteer_core.method.persistence import load_steerer, save_steerer
from odesteer_core.method.registry import STEERERS, make_steerer
from odesteer_core.method.strength import T_to_relative, relative_to_T

__all__ = [
    "FEATURE_MAPS",
    "SOLVERS",
    "STEERERS",
    "Barrier",
    "Identity",
    "NotFittedError",
    "RandomFourier",
    "Steerer",
    "T_to_relative",
    "TensorSketch",
    "integrate",
    "integrate_with_values",
    "load_steerer",
    "make_steerer",
    "relative_to_T",
    "save_steerer",
]
