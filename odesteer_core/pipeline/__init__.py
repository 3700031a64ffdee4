"""The front door: fit a concept on a model, then compare the three arms on a prompt.

lm = oc.load_lm("tiny-random-llama")
fitted = oc.fit_concept(lm, oc.load_concept("polite"))            # activations + ODESteer
for comparison in oc.compare(lm, fitted, "How do I ask for a raise?", oc.Steering(0.3)):
    print(comparison.arm("odesteer").text)
"""

from odesteer_core.pipeline.compare import compare
from odesteer_core.pipeline.fit import FittedConcept, fit_concept
from odesteer_core.pipeline.steering import DEFAULT_STRENGTH, ONE_STEP_METHODS, Steering

__all__ = [
    "DEFAULT_STRENGTH",
    "ONE_STEP_METHODS",
    "FittedConcept",
    "Steering",
    "compare",
    "fit_concept",
]
