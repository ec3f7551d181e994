"""Text columns redacted in bulk (the prediction log's inputs): PII masked (`pii.redact`) and credentials hidden
(`kubepipe.secrets.redact_text`), each value by the same rule as one shown alone.

Arrow's RE2 picks the values that may hold either (`pii.MAY_HOLD_MASKED`, `secrets.MAY_HOLD_CREDENTIAL`, and the
values of this process's credential-named environment variables as plain substrings): one call for the column,
without the GIL. Only those go through the rules in Python, one by one; a column of ordinary text costs the scan.
"""

from __future__ import annotations

__all__ = ["redact_strings"]


def redact_strings(values, *, pii: bool = True, credentials: bool = False):
    """A pyarrow string array (or chunked array) with every value redacted: PII masked (`pii.redact`, the MASKED
    kinds) unless `pii` is False, and, with `credentials`, credentials hidden first (`redact_text`: `pii.redact_shown`
    with both). The same object when nothing changed. Nulls stay null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from kubepipe.components import pii as pii_rules
    from kubepipe.secrets import MAY_HOLD_CREDENTIAL, environment_secrets, redact_text

    patterns = ([pii_rules.MAY_HOLD_MASKED] if pii else []) + ([MAY_HOLD_CREDENTIAL] if credentials else [])
    if not patterns:
        return values
    hit = pc.match_substring_regex(values, "|".join(f"(?:{p})" for p in patterns))
    for secret in environment_secrets() if credentials else ():  # `redact_text` hides them wherever they stand
        hit = pc.or_(hit, pc.match_substring(values, secret))
    hit = pc.fill_null(hit, False)
    if not pc.any(hit).as_py():
        return values
    rule = (pii_rules.redact_shown if credentials else pii_rules.redact) if pii else redact_text
    if not isinstance(values, pa.ChunkedArray):
        return _redact_hits(values, hit, rule)
    chunks, at = [], 0
    for chunk in values.chunks:  # chunk by chunk: no one conversion holds the GIL for the whole column
        chunks.append(_redact_hits(chunk, hit.slice(at, len(chunk)).combine_chunks(), rule))
        at += len(chunk)
    return pa.chunked_array(chunks, values.type)


def _redact_hits(values, hit, rule):
    import pyarrow as pa
    import pyarrow.compute as pc

    found = values.filter(hit).to_pylist()
    masked = [rule(v) for v in found]
    return values if masked == found else pc.replace_with_mask(values, hit, pa.array(masked, values.type))
