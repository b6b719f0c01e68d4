"""Whether a run logs to W&B live or offline, by W&B's own switches.

- `WANDB_MODE=online` asks for live logging, `offline` (or `dryrun`) keeps the run on disk, `disabled` turns
  W&B off (W&B itself acts on it).
- Without `WANDB_MODE`, W&B's settings decide (`wandb offline` stores offline, `wandb online` clears it): a
  user who is logged in (`wandb login`, or `WANDB_API_KEY`) logs live, anyone else offline, and nobody is
  ever asked for a key.
- A live run needs the W&B server to answer: when it does not answer within a few seconds, or no key is
  stored, the run logs offline instead and says so in one line; `make wandb-sync RUN=…` uploads it later.
"""

from __future__ import annotations

import configparser
import netrc
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

REACH_TIMEOUT_S = 3.0
OFFLINE_MODES = ("offline", "dryrun")


def logs_offline(reach_timeout_s: float = REACH_TIMEOUT_S) -> bool:
    """True when this run must log offline (see the module doc); prints why when live logging was asked
    for but cannot work."""
    requested = os.environ.get("WANDB_MODE")
    if requested in OFFLINE_MODES:
        return True
    if requested == "disabled":
        return False  # W&B's own "disabled" mode logs nothing; forcing offline would override it
    mode, base_url = wandb_settings()
    explicitly = requested == "online"
    if not explicitly and mode in OFFLINE_MODES:
        return True
    if not stored_key(base_url):
        if explicitly:
            _say("WANDB_MODE=online, but no W&B API key is stored (run `wandb login` or set WANDB_API_KEY)")
        return True
    problem = unreachable(base_url, reach_timeout_s)
    if problem:
        _say(f"W&B is switched on, but {problem}")
        return True
    return False


def wandb_settings() -> tuple[str, str]:
    """(mode, server URL) as W&B reads them when WANDB_MODE is not set: its global settings file, where
    `wandb offline` writes `mode` (WANDB_CONFIG_DIR, else ~/.config/wandb), and WANDB_BASE_URL. Read without
    starting W&B: `wandb.setup()` here would fix W&B's settings before Lightning sets an offline logger's."""
    import wandb

    folder = Path(os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb")
    stored = configparser.ConfigParser()
    stored.read(folder / "settings")
    mode = stored.get("default", "mode", fallback="online")
    base_url = os.environ.get("WANDB_BASE_URL") or stored.get("default", "base_url", fallback="")
    return mode, base_url or wandb.Settings().base_url


def stored_key(base_url: str) -> bool:
    """Whether W&B has an API key for `base_url` without asking: WANDB_API_KEY, or a netrc entry for the
    host (where `wandb login` stores it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        return netrc.netrc(path).authenticators(urlsplit(base_url).hostname or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def unreachable(base_url: str, timeout_s: float) -> str | None:
    """Why the W&B server at `base_url` does not answer an HTTP request within `timeout_s`, or None. Any
    HTTP reply counts (the server is there); a refused or silent connection, a name that does not resolve, or
    a certificate that is not the server's (an intercepting proxy) does not."""
    request = urllib.request.Request(base_url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"{urlsplit(base_url).netloc} does not answer ({reason})"


def _say(reason: str) -> None:
    print(
        f"[wandb] {reason}: logging offline; `make wandb-sync RUN=<run folder>` uploads it later.", flush=True
    )
