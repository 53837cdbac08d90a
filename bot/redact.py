"""Keep secrets out of logs and listings: mask token-bearing URLs, secrets and passwords."""

from __future__ import annotations

from urllib.parse import urlsplit


def mask_secret(secret: str) -> str:
    """``whsec_abc…xyz`` → ``whsec_…xyz``: enough to tell two apart, not to use one."""
    prefix = "whsec_" if secret.startswith("whsec_") else ""
    return f"{prefix}…{secret[-4:]}" if len(secret) > len(prefix) + 8 else f"{prefix}…"


def mask_url(url: str) -> str:
    """Keep scheme, host and the first path segment; hide the rest (where tokens live)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    shown = "/" + segments[0] if segments else ""
    hidden = "/…" + (segments[-1][-4:] if len(segments) > 1 else "") if len(segments) > 1 else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{shown}{hidden}{'?…' if parts.query else ''}"


def mask_target(address: str) -> str:
    """Mask a webhook URL; email addresses are shown as they are (they are the target)."""
    return mask_url(address) if "://" in address else address
