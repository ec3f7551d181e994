"""Data components: load, validate (Great Expectations 1.x gate), drift, expectation inference, sample data.

Modules import pandas / GX / scipy inside functions so that importing this package stays cheap.
"""
