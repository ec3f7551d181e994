"""Reusable KFP components of kubepipe and the runtime code behind them.

Import nothing heavy here: the SDK imports this package at validate time.
"""
