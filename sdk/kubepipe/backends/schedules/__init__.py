"""Schedules: the desired-vs-actual plan, its KFP / Vertex / local adapters, and the local scheduler."""
