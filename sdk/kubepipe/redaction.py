"""Credentials hidden in what kubepipe shows: values, URLs (passwords, credential query values, webhook paths), text.

The shapes come from kubepipe.secret_shapes; sits below every layer (like kubepipe.errors) so messages, logs,
records and metadata all go through it.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

from kubepipe.aws_secret_keys import KeyIdWindow, hide_tokens
from kubepipe.secret_shapes import (PEM_BEGIN, PEM_END, PLACEHOLDER, QUERY_ITEM_IN_TEXT, QUERY_SEP, TOKEN_MARKS,
                                    URL_IN_TEXT, URL_PASSWORD, WHOLE_REF, keyed_secret, may_hold_credential,
                                    nested_item_spans, query_item_hidden, query_items, secret_value_kind)
from kubepipe.text_credentials import (COMMAND_CREDENTIALS, COMMAND_MARKS, HEADER_MARKS, HOST_KEYS, IMAGE_PASSWORD_IN_TEXT,
                                       REDACTED, SECRET_HEADER, SENTENCE_END, WEBHOOK_PATH_IN_TEXT, redact_host,
                                       webhook_path)
from kubepipe.util import is_file_uri
from kubepipe.xml_credentials import hide_xml_secrets

__all__ = ["redacted", "redact_url", "redact_text", "redact_profile", "registry_uri_problem", "environment_secrets", "StreamRedactor", "MAY_HOLD_CREDENTIAL"]


def redacted(value: Any, key: object = None, *, whole: bool = True) -> Any:
    """`value`, or REDACTED when it (or its key) looks like a credential; containers are walked. A URL whose
    credential is its password, its user (a token), a query value (a presigned URL's signature) or a webhook's path
    is shown as `redact_url` shows it (`postgres://app:<redacted>@db`, `https://h/d.csv?X-Amz-Signature=<redacted>`):
    which file or host stays readable. Other text has what `redact_text` hides in it hidden (`--db-password=<redacted>`,
    a credential-named environment variable's value): a value echoed in a message (`expects int (got ...)`).
    `whole` False: text holding a credential's shape has that credential hidden, not the whole text (a step's
    output, `connected to postgres://app:<redacted>@db as bob`: the rest of a line a step returned stays readable)."""
    if isinstance(value, dict):
        return {k: redacted(v, k, whole=whole) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key, whole=whole) for v in value]
    if key is not None and keyed_secret(key, value):
        return REDACTED
    if key in HOST_KEYS:  # `host: bob:pw@kfp.example.com`, no scheme: no URL rule reads it
        value = redact_host(value)
    if whole and secret_value_kind(value):
        shown = redact_url(value) if URL_IN_TEXT.fullmatch(value) else REDACTED
        return shown if not secret_value_kind(shown) else REDACTED
    return redact_text(value) if isinstance(value, str) else value


def redact_url(text: str) -> str:
    """`text` as messages, logs and metadata may show it: in a URL the password, a user that is a token and each
    query value that holds a credential (a signed URL's signature, an access token: `query_items`' rule) become
    REDACTED, the scheme, host, path, user name, query keys and every other query value readable
    (`postgres://app:<redacted>@db/x?sslmode=require`), and so does the secret path of a Slack, Discord, Teams,
    Google Chat or Mattermost webhook (its first segments kept); a path or a file:// URL is returned as is."""
    from urllib.parse import unquote, urlsplit

    if not isinstance(text, str) or "://" not in text or is_file_uri(text):
        return text
    # the password first, by its own rule: one holding a `/`, `?` or `#` ends the authority for urlsplit
    # (`postgres://u:pa?ss@h/db` was user `u`, password `pa`, query `ss@h/db`: shown whole)
    text = URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text, count=1) if URL_PASSWORD.match(text) else text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError:
        return text
    netloc = parts.netloc
    user, at, host_port = netloc.rpartition("@")
    if at:  # the password; and a user that is a token (`https://ghp_...@github.com`, `x-oauth-basic`'s)
        name, colon, _ = user.partition(":")
        name = REDACTED if secret_value_kind(unquote(name)) else name
        netloc = f"{name}{colon and ':' + REDACTED}@{host_port}"
    items = query_items(parts.query, host, shown=True) if parts.query else []
    seps = [""] + QUERY_SEP.findall(parts.query)  # each item after the separator it was written after
    query = "".join(sep + (key + f"={REDACTED}" if secret else _hide_spans(key + eq + value, nested))
                    for sep, (key, eq, value, secret, nested) in zip(seps, items))
    if items and items[-1][3] and not parts.fragment:  # a sentence's punctuation after it (`&token=T1: 404`) stays
        query += parts.query[len(parts.query.rstrip(SENTENCE_END)):]
    # Rebuilt by hand: urlunsplit drops the `//` of an empty authority (`memory:///reg` became `memory:/reg`).
    scheme = text[:len(parts.scheme) + 1] if parts.scheme else ""
    slashes = "//" if text[len(scheme):].startswith("//") else ""
    path = webhook_path(parts.netloc, parts.path)
    return (f"{scheme}{slashes}{netloc}{path}" + (f"?{query}" if parts.query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


def registry_uri_problem(uri: str, *, password: bool = True) -> str | None:
    """Why a registry URI cannot be used as it is, or None: whitespace around it, a file:// naming no folder, or, in a
    remote one (s3://, gs://, any fsspec URI but file://), a password (unless `password` is False: a profile's
    credential check says it) or a query string, which s3fs / gcsfs read as part of the bucket or key
    (`s3://k:s@b/reg` is the bucket `k:s@b`), and which every model URI, record and message shows redacted."""
    from urllib.parse import urlsplit

    if isinstance(uri, str) and uri != uri.strip():  # any registry: `reg\n` was another folder
        return ("a registry URI cannot begin or end with whitespace (a newline kept from a file it was read from?); "
                "remove it")
    if isinstance(uri, str) and is_file_uri(uri) and not uri[len("file://"):].strip("/"):
        # `file://${env.REG}` with REG unset: was the working directory (file://) or the filesystem's root (file:///)
        return ("it names no folder (an unset variable where the path goes?); give one: file:///path/to/registry, "
                "or a folder path")
    if not isinstance(uri, str) or "://" not in uri or is_file_uri(uri):
        return None
    try:
        parts = urlsplit(uri)
        secret = parts.password is not None or URL_PASSWORD.match(uri)  # `s3://k:p/ss@b`: urlsplit's password `p`
        what = "a password" if password and secret else "a query string" if parts.query else ""
    except ValueError:  # a malformed authority: the store's own error says so
        return None
    if not what:
        return None
    return (f"a registry URI cannot carry {what}: fsspec's stores read it as part of the bucket or path, and model "
            "URIs and records show it redacted. Give credentials through the environment (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS) and an S3 endpoint as AWS_ENDPOINT_URL_S3")


# key=value, key: value, and the quoted keys and values of a JSON object or a Python dict in a message
# ({"password": "hunter 2"}, {'api_key': 'x'}); a quoted value runs to its closing quote, the other quote and
# backslash-escaped ones inside it (json.dumps' `"it\"s"`, repr's `"it's"`) part of it: they ended it, and the rest
# of the password was printed. A whole `${...}` is a reference, no credential (`token: ${env.KFP_TOKEN}` was shown as
# `token: <redacted>}`).
# A key is tried from the start of its run of key characters only (`--db-password`, `_token`: its leading `-`, `_`,
# `.` and digits are `pre`): tried from every character of a long word, a 20 000-character line took 18 s. Only a
# key holding a word of a credential's name is read (`is_secret_name`'s are all among them): another key's value,
# read whole, hid the pair inside it (`"time_column": "--db-password=hunter2"` in a step's inputs was shown).
# A JSON object inside a JSON string (a structured log's message, a param holding JSON) has its quotes escaped
# (`{\"password\": \"x\"}`): a quote may follow backslashes, the same before and after the key and the value.
# The words one of a credential's names holds (`is_secret_name`'s; `auth`: a Docker config's): a key or a flag
# holding none names no credential.
_NAME_WORDS = "token|bearer|pass|pwd|secret|cookie|auth|credential|key|" + HEADER_MARKS  # and a header's (`SECRET_HEADER`)
# An HTTP auth scheme written before a credential in a header's value (`X-Api-Key: token abc`, `Api-Key: Key abc`):
# the credential is the word after it (was: the scheme alone was hidden, the credential shown).
_AUTH_SCHEMES = r"(?i:token|bearer|basic|digest|key|apikey|api-key|sso-key|ssws|splunk|geniekey|hmac)[ \t]+(?=[^\s'\",;&}\]])"
_KEYED_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_.\\-])(?P<kq>\\*['\"]|)(?P<pre>[0-9_.-]*)"
                            r"(?=[A-Za-z0-9_.-]*?(?i:" + _NAME_WORDS + r"))"
                            r"(?P<key>[A-Za-z][A-Za-z0-9_.-]*)"
                            r"(?P=kq)(?P<sep>\s*[=:]\s*)"
                            r"(?:(?P<q>\\*['\"])(?P<quoted>(?:(?!(?P=q))(?:\\.|[^\\\n]))+)(?P=q)"
                            r"|(?P<ref>\$\{[^}\n]*\})(?=[.:)]*(?:[\s'\",;&}\]]|$))"
                            r"|(?P<ph>" + PLACEHOLDER + r")(?=[.:)`]*(?:[\s'\",;&}\]]|$))"
                            r"|(?P<scheme>" + _AUTH_SCHEMES + r")?(?!`(?:[\s'\",;.:)&}\]]|$))"  # no lone closing `
                            r"(?P<value>(?:\$\{[^}\n]*\})?[^\s'\",;&}\]]+))")


# An HTTP Authorization header in a message, unquoted (`Authorization: token abc`, AWS's `AWS4-HMAC-SHA256
# Credential=..., Signature=...`, Digest's quoted params), or another `SECRET_HEADER` (`Cookie: a=1; session=s`):
# its value runs to the line's end (a quoted value, as in a JSON object, is `keyed`'s).
_AUTH_HEADER_IN_TEXT = re.compile(r"\b((?:(?:proxy-)?authorization\s*[:=]|(?:" + SECRET_HEADER + r")\s*:)\s*)"
                                  r"(?![\s'\"<])[^\n]+", re.I)


def environment_secrets() -> list[str]:
    """The values of this process's environment variables named like a credential (`is_secret_name`: API_TOKEN,
    DB_PASSWORD, AWS_SECRET_ACCESS_KEY) that could be one (`keyed_secret`: no flag, short number or path), longest
    first; only those of 8 characters or more, and a letters-only one of 20 or more, so that a common word
    (`development`) is not hidden everywhere. A step's secret (`env: {VAR: {secret: ...}}`) is read from here on a local run.

    Asked for every line a run or a server logs: reading the whole environment took ~280 us with 135 variables
    (os.environ decodes every key and value), so the answer is kept while the environment is as it was, told by
    `_env_data` (~5 us): any variable added, removed or changed, a swap of two of them too, is seen at the
    next call. Where that cannot be read (an os.environ replaced by another mapping), by the size of the environment
    and the values of its credential-named variables, and a full read at least every second (one variable removed
    and another added between two calls keeps its size)."""
    import os
    import time

    environ = os.environ
    data = _env_data(environ)
    cached = _ENV_CACHE[0]
    now = time.monotonic()
    if cached is not None and (cached[0] == data if data is not None else
                               now - cached[1] < _ENV_RECHECK_S and cached[4] == _env_loose(environ, cached[2])):
        return list(cached[3])
    exact = dict(data) if data is not None else None  # taken before the read: a change meanwhile is seen next call
    for _ in range(3):  # another thread may set a variable while this reads them
        try:
            env = environ.copy()
            break
        except RuntimeError:
            continue
    else:
        env = {}
    names = tuple(k for k in env if may_hold_credential(k))
    found = sorted({v for k in names if len(v := env[k]) >= 8 and _credential_variable(k, v)}, key=len, reverse=True)
    with _ENV_LOCK:
        _ENV_CACHE[0] = (exact, now, names, tuple(found), _env_loose(env, names))
    return found


def _env_data(environ: Any) -> dict | None:
    """os.environ's own dict of its keys and values as it holds them (encoded), or None (another mapping): compared
    with a copy kept, a change of any variable, a swap of two too, is seen without decoding one (~5 us with 135
    variables; unchanged values are the same objects, compared by identity first). `os.environ._data` is CPython's,
    no public API (decision 0018; pinned by tests/unit/test_redaction_stream.py): the public ways to list the keys
    decode each (~100 us, on every log line)."""
    data = getattr(environ, "_data", None)
    return data if isinstance(data, dict) else None


def _env_loose(env: Any, names: tuple[str, ...]) -> tuple:
    return len(env), tuple(env.get(name) for name in names)


_ENV_RECHECK_S = 1.0
# (a copy of os.environ's own dict or None, when read, credential-named variables, their secret values, loose fingerprint):
# replaced whole, under the lock
_ENV_CACHE: list[tuple | None] = [None]
_ENV_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1024)  # called for every line a run logs: the rule's regexes once per variable
def _credential_variable(name: str, value: str) -> bool:
    return (not value.isalpha() or len(value) >= 20) and keyed_secret(name, value)


# A URL (its host known: `redact_url`), or a query item of one shown without its scheme (`GET /api/x?code=...`, the
# host unknown); read in one pass so that a URL's items are judged by its host only.
# An item without `=` is read when it holds one percent-encoded (`GET /f?token%3Dabc`).
_URL_OR_QUERY_ITEM = re.compile(f"(?P<url>{URL_IN_TEXT.pattern})|{QUERY_ITEM_IN_TEXT.pattern}"
                                r"|(?<=[?&;])(?P<item>[^\s=&;?#'\"<>]*?%(?:25){0,2}3[Dd][^\s=&;?#'\"<>]*)")

_URL_ENDS = frozenset("'\"<>")  # characters that end URL_IN_TEXT's URL


def _cut_url_password(m: re.Match) -> str:
    """A URL's password that URL_IN_TEXT would cut (a quote or an angle bracket in it) REDACTED whole; others as they
    are (`redact_url` hides those, reading the URL's query by its host). Cut, its tail was read as a query item of
    no URL (`postgres://:';0=0:0@db/x`: `;0=0:0@db/x`) and hidden as one, leaving the head in clear."""
    return m.group("head") + REDACTED if _URL_ENDS.intersection(m.group("password")) else m.group(0)


def _url_or_query_item(m: re.Match) -> str:
    if m.group("url"):
        return redact_url(m.group("url"))
    if m.group("item"):  # no `=` in it: one percent-encoded (`?token%3Dabc`)
        return _hide_spans(m.group("item"), nested_item_spans(m.group("item"), query_item_hidden))
    key, value = m.group("key"), m.group("value")
    if query_item_hidden(key, value, None):
        return f"{key}={REDACTED}"
    at = len(key) + 1
    return _hide_spans(m.group(0), [(at + a, at + b) for a, b in nested_item_spans(value, query_item_hidden)])


def _hide_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each (start, end) span REDACTED (in order, apart: `nested_item_spans`')."""
    out, pos = [], 0
    for start, end in spans:
        out += [text[pos:start], REDACTED]
        pos = end
    return "".join(out) + text[pos:]


def redact_text(text: str) -> str:
    """Free text (an error message bound for a webhook or a log) with every credential in it REDACTED: the value of
    an environment variable named like one (`environment_secrets`), the shapes `secret_value_kind` knows, the
    password and credential query values of URLs (`redact_url`), an image reference's (`bob:<redacted>@reg.io/img`),
    a credential's query value in a URL shown without
    its scheme, by the same rule, its host unknown (`PUT /b/k?X-Amz-Signature=...`, `GET /api/x?code=...`), an unquoted
    Authorization header to its line's end, the value of `key=value` / `key: value` pairs whose key names a
    credential (`password=hunter2`; after an auth scheme, the word after it: `X-Api-Key: token <redacted>`), and that of a flag naming one (`--password s3cret`, `'--password', 's3cret'`),
    curl's `-u user:<redacted>`, a MySQL client's `-p<redacted>` and a .netrc's `password <redacted>`
    (`COMMAND_CREDENTIALS`), an XML element's text named as one (`<SecretAccessKey>`), an AWS key beside its id."""
    if not isinstance(text, str) or not text:
        return text
    text = _hide_environment(text)
    # Most lines hold none of what the rules below look for (~140 us for all of them, on every line of run.log):
    # a line with no `_CANDIDATE` in it is as they would leave it.
    return _redact_shapes(text) if _candidate(text) else text


def _hide_environment(text: str) -> str:
    """The values of `environment_secrets` REDACTED: the value alone (`login failed: hunter2hunter2`), which no
    rule of `_redact_shapes` sees."""
    for value in environment_secrets():
        text = text.replace(value, REDACTED)
    return text


def _redact_shapes(text: str) -> str:
    """`redact_text`'s rules but the environment's secrets, all of them tried (no `_CANDIDATE` pre-test)."""
    text = hide_tokens(text)  # TOKENS' shapes; a bare AWS secret key where its key id is in the text (aws_secret_keys)
    text = URL_PASSWORD.sub(_cut_url_password, text)  # before the query rule reads the password's tail as an item
    text = _URL_OR_QUERY_ITEM.sub(_url_or_query_item, text)
    # what the URL rule left: a password after a run of URLs with no `@` (`a://b:a://b:postgres://u:pw@h`)
    text = URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
    text = IMAGE_PASSWORD_IN_TEXT.sub(lambda m: m.group("head") + REDACTED, text)  # `bob:pw@reg.io/img:1`
    text = WEBHOOK_PATH_IN_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)
    text = _AUTH_HEADER_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)
    for pattern in COMMAND_CREDENTIALS:  # `curl -u bob:pw`, `mysql -ppw`, a .netrc's `password pw`
        text = pattern.sub(_command_credential, text)

    def keyed(m: re.Match) -> str:
        q = m.group("q") or ""
        value = m.group("quoted") if q else m.group("value")
        # after an auth scheme any value is the credential (`X-Api-Key: token 0000`)
        secret = keyed_secret(m.group("key"), value) or bool(m.group("scheme") and may_hold_credential(m.group("key")))
        if (m.group("ref") or m.group("ph") or WHOLE_REF.match(value) or not secret
                or value.rstrip(SENTENCE_END) == REDACTED  # a URL's, already (`?token=<redacted>`)
                or value == "{secret:"):  # `DB_PASSWORD: {secret: s, key: k}`: names a secret, holds none
            return m.group(0)
        kq = m.group("kq")
        # an unquoted value's `)` that no `(` in it opens closes the text around it (`(password=hunter2)`): kept
        closing = "" if q else value[len(value.rstrip(")")):][:max(value.count(")") - value.count("("), 0)]
        scheme = m.group("scheme") or ""
        return f"{kq}{m.group('pre')}{m.group('key')}{kq}{m.group('sep')}{q}{scheme}{REDACTED}{q}{closing}"

    return _FLAG_IN_TEXT.sub(_flag_value, _KEYED_IN_TEXT.sub(keyed, hide_xml_secrets(text)))  # `<Password>x</...>`


# What one of `_redact_shapes`' rules needs in a text to find anything, in any case (a superset): a token's mark
# (TOKEN_MARKS); a URL's `://` (its password, its query, a webhook's path); an `@` (an image reference's password);
# a query item (`?k=`, `&k=`, `;k=`), by QUERY_ITEM_IN_TEXT's key; a webhook's path without its scheme; a word of a
# credential's name (a key, a flag, an Authorization header, a .netrc's `password`); a command's (COMMAND_MARKS).
_QUERY_MARK = re.compile(r"[?&;][^\s=&;?#'\"<>]+(?:=|%(?:25){0,2}3[Dd])")
_MARKS = "://|@|/hooks/|/services/|" + TOKEN_MARKS + "|" + _NAME_WORDS + "|" + COMMAND_MARKS
_CANDIDATE = re.compile(_QUERY_MARK.pattern + "|" + _MARKS, re.I)
# `_CANDIDATE` for Arrow's RE2 (the prediction log's column); RE2 folds `İ` and `ı` unlike re (`i`): either is picked
MAY_HOLD_CREDENTIAL = "(?i)" + _CANDIDATE.pattern + "|[\u0130\u0131]"
# The same in ASCII text, as plain words looked for in it lowercased (~5 us, where the regex's 40 alternatives tried
# at each character took ~50): each mark up to its first `[...]` (`gh[pousr]_`: `gh`), or after a leading one
# (`[sr]k_live_`: `k_live_`); a query item by `_QUERY_MARK`.
_ASCII_MARKS = tuple(sorted({re.split(r"\[", re.sub(r"^\[[^]]*\]", "", mark))[0].replace("\\", "").lower()
                             for mark in _MARKS.split("|")}))


def _candidate(text: str) -> bool:
    """Whether `text` holds something `_redact_shapes` may hide (`_CANDIDATE`), as its regex would find: in ASCII text
    by `_ASCII_MARKS`; other text by the regex itself, whose case rule differs from str.lower's (`İ` is `i` to it)."""
    if not text.isascii():
        return _CANDIDATE.search(text) is not None
    low = text.lower()
    return any(mark in low for mark in _ASCII_MARKS) or (("=" in text or "%" in text)
                                                         and _QUERY_MARK.search(text) is not None)


def _command_credential(m: re.Match) -> str:
    value = m.group("value")
    kept = value.startswith((REDACTED, "$"))  # a shell's `$PASS` / `${PASS}` says where the password is
    return m.group(0) if kept or WHOLE_REF.match(value) else m.group("head") + REDACTED


# A command-line flag that names a credential and its value as the next argument: in an argument list as Python or
# JSON shows it (CalledProcessError's `Command '['docker', 'login', '--password', 'pw']'`), or in a command line
# (`mysql --password s3cret -h db`), where a plain word after it is prose, no value (`use --password to set it`,
# argparse's `[--password PASSWORD]`), nor a placeholder (`--password <your password>`). `--password=pw` is
# `key=value`'s.
_FLAG_IN_TEXT = re.compile(r"(?<![\w-])(?P<flag>--?[A-Za-z][\w.-]*)"
                           r"(?:(?P<q>['\"])(?P<sep>,[ \t]*)(?P=q)(?P<quoted>(?:\\.|(?!(?P=q))[^\\\n])+)(?P=q)"
                           r"|(?P<sp>[ \t]+)(?P<value>\$\{[^}\n]*\}|" + PLACEHOLDER + r"(?=[\s,;)\]}]|$)"
                           r"|[^-\s'\",;)\]}][^\s'\",;)\]}]*))")
_WORD = re.compile(r"[a-z]+|[A-Z]+|[A-Z][a-z]+")


def _flag_value(m: re.Match) -> str:
    flag, q = m.group("flag"), m.group("q")
    value = m.group("quoted") if q else m.group("value")
    if (not keyed_secret(flag.lstrip("-"), value) or WHOLE_REF.match(value) or value == REDACTED
            or (not q and _WORD.fullmatch(value))):
        return m.group(0)
    return f"{flag}{q}{m.group('sep')}{q}{REDACTED}{q}" if q else f"{flag}{m.group('sp')}{REDACTED}"


_PEM_BEGIN, _PEM_END = re.compile(PEM_BEGIN), re.compile(PEM_END)
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=]*|[A-Za-z-]+: [^\n]*")  # base64, or a header (`DEK-Info: AES-128-CBC,...`)


class StreamRedactor:
    """`redact_text` for text written in pieces, a line at a time (a run's log): a PEM key's lines after its BEGIN
    line too, to its END line or the first that is none of a key's (base64, a `Name: value` header or blank), shown:
    a key cut short hides no more; a hidden line's text becomes REDACTED, its indentation kept. A bare AWS
    secret key after its key id in an earlier piece (`key_ids`, may be a step's stdout's and stderr's). One per
    stream; safe across threads."""

    def __init__(self, key_ids: KeyIdWindow | None = None) -> None:
        self._in_key, self._key_ids, self._lock = False, key_ids or KeyIdWindow(), threading.Lock()

    def __call__(self, text: str) -> str:
        if not isinstance(text, str) or not text:
            return text
        with self._lock:
            hidden: list[str] = []
            lines = self._key_ids(text).splitlines(keepends=True)
            while self._in_key and lines:
                line = lines[0]
                if not (_PEM_END.search(line) or _PEM_BODY.fullmatch(line.strip())):
                    self._in_key = False
                    break
                self._in_key = not _PEM_END.search(line)
                body = line.strip()
                hidden.append(line.replace(body, REDACTED, 1) if body else line)
                lines.pop(0)
            text = "".join(lines)
            begins = list(_PEM_BEGIN.finditer(text))
            if begins and not _PEM_END.search(text, begins[-1].end()):
                self._in_key = True
            return "".join(hidden) + redact_text(text)


def redact_profile(profile: Any) -> Any:
    """A copy with every secret-looking value replaced by "<redacted>" (for logs)."""
    return redacted(profile)
