"""Plan layer: the resolved, type-checked DAG for one target."""

from kubepipe.plan.build import build_plan
from kubepipe.plan.model import Plan, PlanStep

__all__ = ["build_plan", "Plan", "PlanStep"]
