"""The planner: how much memory a model needs, which hardware fits it, how fast it will run.

Pure functions of frozen dataclasses; the CLI (`deeplocal plan`) only formats what `plan()` returns.
"""

from deeplocal.planner.plan import DeviceOption, PlanRequest, PlanResult, plan
from deeplocal.planner.specs import ModelSpec, model_from_name

__all__ = ["DeviceOption", "ModelSpec", "PlanRequest", "PlanResult", "model_from_name", "plan"]
