"""Credentials in XML text: an element named as a credential has its text hidden (`redact_text` calls it).

An AWS STS answer quoted in an error or a log (AssumeRole, GetSessionToken: `<SecretAccessKey>...</SecretAccessKey>`,
`<SessionToken>...`) showed the secret key: no `key=value` rule reads an element, and a bare 40-character secret
key is not told from a hash or a base64 id by its shape. The element's name decides, by the rule of a `key=value`
pair (`keyed_secret`): `<Password>`, `<ns:ClientSecret>` are hidden; S3's `<Key>data/x.csv</Key>` (an object's
name), `<max_tokens>100</max_tokens>` are not.
"""

from __future__ import annotations

import re

from kubepipe.secret_shapes import WHOLE_REF, keyed_secret
from kubepipe.text_credentials import REDACTED

__all__ = ["hide_xml_secrets"]

# bounded: a tag name, attributes and text of sane length; the text holds no `<`, so each `<` starts one try
_ELEMENT = re.compile(r"<(?P<tag>[A-Za-z_][\w.:-]{0,100})(?:\s[^<>]{0,500})?>(?P<value>[^<]{1,8192})</(?P=tag)\s*>")


def hide_xml_secrets(text: str) -> str:
    """`text` with the text of each element whose name names a credential REDACTED, its tags kept."""
    if "</" not in text:
        return text

    def element(m: re.Match) -> str:
        value = m.group("value").strip()
        # a namespace's prefix (`<a:ClientSecret>`) is no part of the name; `${TOKEN}` names where a value comes from
        if value == REDACTED or WHOLE_REF.match(value) or not keyed_secret(m.group("tag").rpartition(":")[2], value):
            return m.group(0)
        start, end = m.start("value") - m.start(), m.end("value") - m.start()
        return m.group(0)[:start] + REDACTED + m.group(0)[end:]

    return _ELEMENT.sub(element, text)
