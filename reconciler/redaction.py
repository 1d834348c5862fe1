"""The one redaction of the API key: every renderer and every file written passes through it.

The key comes from `AMIGO_API_KEY` only (never a flag), so that variable is what is
redacted. It should never reach an output in the first place (manifests may not use
it, see reconciler/manifests.py); this is the defence in depth for what slips past:
a live service already named after the key, a message quoting a request, a bug.

Renderers escape values (JSON for plans, Markdown and HTML for comments, GitHub's
`%XX` for annotations), so the key is matched in each of those spellings too, and
in any letter case: `export --out` names files after a lower-cased slug, so a match
that cared about case would write `redacted.yaml` holding the lower-cased key.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
from collections.abc import Mapping

from reconciler.api.config import CREDENTIAL_VARIABLES, ENV_API_KEY, SECRET_VARIABLES

__all__ = ["CREDENTIAL_VARIABLES", "REDACTED", "SECRET_VARIABLES", "api_key", "redact"]

# A plain scalar wherever it lands: YAML reads `name: REDACTED` as a string (not the
# list `[redacted]` would be), JSON and Markdown show it as is.
REDACTED = "REDACTED"
# A shorter value is no plausible API key; redacting it would garble every output.
MIN_SECRET_LENGTH = 8


def api_key(env: Mapping[str, str] | None = None) -> str | None:
    """The API key the reconciler signs in with (stripped, as the config reads it), if any."""
    value = (os.environ if env is None else env).get(ENV_API_KEY)
    if value is None or len(value.strip()) < MIN_SECRET_LENGTH:
        return None
    return value.strip()


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every occurrence of the API key, in any spelling a renderer uses and any
    letter case, replaced."""
    key = api_key(env)
    if key is None:
        return text
    return _pattern(key).sub(REDACTED, text)


@functools.lru_cache(maxsize=4)
def _pattern(key: str) -> re.Pattern[str]:
    # IGNORECASE: the key in any letter case (docs/safety.md, "Redaction").
    return re.compile("".join(_spellings(char) for char in key), re.IGNORECASE)


def _spellings(char: str) -> str:
    """One character of the key as raw text, JSON, HTML, Markdown (`\\_`) or GitHub (`%25`)."""
    forms = {
        char,
        json.dumps(char)[1:-1],
        json.dumps(char, ensure_ascii=False)[1:-1],
        html.escape(char),
        "\\" + char,
        char.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"),
        char.replace(":", "%3A").replace(",", "%2C"),
    }
    return "(?:" + "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)) + ")"
