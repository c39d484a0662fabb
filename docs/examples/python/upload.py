#!/usr/bin/env python3
"""Upload a file to X through mediagw's REST API, resuming after a broken
connection, with the Python standard library only.

    python3 upload.py FILE MEDIA_TYPE [--url http://127.0.0.1:8080] [--token JWT]

Prints one JSON line: media_id, idempotency_key, resumes. See
docs/clients.md.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

RETRIES = 10  # failures in a row without progress before giving up


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def derive_key(sha, size, media_type, account="", x_token=""):
    """The same file, type, account and X user always get the same key, so
    running this again resumes or replays the upload."""
    parts = [sha, str(size), account, media_type]
    if x_token:  # only a hash of the X user's token, never the token
        parts.append("x=" + hashlib.sha256(x_token.encode()).hexdigest())
    return "py-" + hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


class Problem(Exception):
    """An RFC 7807 problem from mediagw: status, code, committed bytes and
    how long to wait (Retry-After)."""

    def __init__(self, status, body, retry_after):
        self.status, self.body = status, body
        self.code = body.get("code", "")
        self.committed = body.get("committed_bytes")
        self.retry_after = float(body.get("retry_after_seconds") or retry_after or 0)
        super().__init__(f"HTTP {status} {self.code}: {body.get('detail', '')}")

    def retryable(self):
        # Interrupted (503 + committed_bytes), another stream drives the key
        # or a wrong resume_offset (409), rate limits with Retry-After (429).
        return self.status in (502, 503, 504, 409) or (self.status == 429 and self.retry_after > 0)


def call(req):
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            body = json.load(e)
        except ValueError:
            body = {}
        raise Problem(e.code, body, e.headers.get("Retry-After")) from None


def upload(base, path, media_type, token=None):
    size = os.path.getsize(path)
    sha = sha256_of(path)
    key = derive_key(sha, size, media_type)
    headers = {"Authorization": "Bearer " + token} if token else {}
    failures, best, resumes, delay = 0, -1, 0, 0.5
    while True:
        # Where does the upload stand? (404: never started.)
        offset, known = 0, False
        try:
            state = call(urllib.request.Request(f"{base}/v1/uploads/{key}", headers=headers))
            if state["phase"] == "UPLOAD_PHASE_COMPLETED":
                return state["response"], key, resumes
            if state["phase"] == "UPLOAD_PHASE_FAILED":
                raise SystemExit(f"upload {key} failed: {state['error']}; a new attempt needs a new key")
            offset, known = int(state.get("committed_bytes") or 0), True
        except Problem as p:
            if p.status != 404 and not p.retryable():
                raise
        except (OSError, http.client.HTTPException):
            pass  # mediagw unreachable: the upload attempt says more
        q = {"media_type": media_type, "total_bytes": size, "sha256": sha}
        if known:
            q["resume_offset"] = offset  # continues (or takes over) the key's upload
        with open(path, "rb") as f:
            f.seek(offset)
            req = urllib.request.Request(
                f"{base}/v1/media:upload?{urllib.parse.urlencode(q)}", data=f, method="POST",
                headers={**headers, "Idempotency-Key": key, "Content-Type": "application/octet-stream",
                         "Content-Length": str(size - offset)})
            try:
                return call(req), key, resumes
            except Problem as p:
                if not p.retryable():
                    raise
                wait = p.retry_after
            except (OSError, http.client.HTTPException):
                wait = 0  # the connection broke
        if offset > best:
            best, failures, delay = offset, 0, 0.5
        failures += 1
        if failures > RETRIES:
            raise SystemExit(f"gave up after {RETRIES} retries without progress; run again to resume ({key})")
        time.sleep(max(wait, delay * random.uniform(0.5, 1.5)))
        delay = min(delay * 1.6, 30)
        resumes += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("media_type")
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--token", default=os.environ.get("MEDIAGW_TOKEN"))
    a = ap.parse_args()
    resp, key, resumes = upload(a.url.rstrip("/"), a.file, a.media_type, a.token)
    json.dump({"media_id": resp["media_id"], "idempotency_key": key, "resumes": resumes}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
