"""Uploads through the emulator with tweepy (Debian python3-tweepy), v1.1 only.

run.sh starts the emulator and sets XFAKE_URL, the OAuth 1.0a keys and
XFAKE_MEDIA. tweepy builds https://<upload_host>/1.1/... URLs; the emulator
serves plain http on loopback, so tweepy.API gets upload_host=<host:port> and
a requests session that switches the scheme before the request is prepared,
hence before OAuth1 signs it: the signature covers the http URL the emulator
sees, and is verified.

Cases: a video with media_category tweet_video through media_upload (chunked,
then tweepy's own STATUS loop), a PNG through media_upload's default simple
upload (one request), and a GIF through chunked_upload with tweet_gif; then
create_media_metadata (POST media/metadata/create.json, a JSON body outside
the OAuth 1.0a signature) sets non-ASCII alt text on the PNG, which the
emulator must hold exactly, from exactly one applied call. Each prints one
line; the exit status is 1 when any case fails.
"""

import hashlib
import json
import os
import sys
import urllib.parse
import urllib.request

import requests
import tweepy


class PlainHTTPSession(requests.Session):
    """A requests session that sends tweepy's https URLs for host over http."""

    def __init__(self, host):
        super().__init__()
        self.prefix = "https://" + host + "/"

    def request(self, method, url, *args, **kwargs):
        if url.startswith(self.prefix):
            url = "http://" + url[len("https://"):]
        return super().request(method, url, *args, **kwargs)


def inspect(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as resp:
        return json.load(resp)


def main():
    base = os.environ["XFAKE_URL"]
    host = urllib.parse.urlsplit(base).netloc
    media = os.environ["XFAKE_MEDIA"]
    auth = tweepy.OAuth1UserHandler(
        os.environ["XFAKE_CONSUMER_KEY"], os.environ["XFAKE_CONSUMER_SECRET"],
        os.environ["XFAKE_ACCESS_TOKEN"], os.environ["XFAKE_ACCESS_TOKEN_SECRET"])
    api = tweepy.API(auth, upload_host=host, retry_count=0, timeout=30)
    api.session = PlainHTTPSession(host)

    video = os.path.join(media, "video.mp4")
    image = os.path.join(media, "image.png")
    gif = os.path.join(media, "anim.gif")
    cases = [
        ("video", video, True, lambda: api.media_upload(video, media_category="tweet_video")),
        ("image", image, False, lambda: api.media_upload(image)),
        ("gif", gif, True, lambda: api.chunked_upload(gif, file_type="image/gif", media_category="tweet_gif")),
    ]
    failed = False
    uploaded = {}
    for name, path, processed, upload in cases:
        label = f"{'tweepy ' + tweepy.__version__:<22} {'v1.1':<7} {name:<6}"
        try:
            polls = inspect(base, "/_xfake/stats")["requests"].get("v1.1-status", 0)
            result = upload()
            uploaded[name] = result.media_id_string
            polls = inspect(base, "/_xfake/stats")["requests"].get("v1.1-status", 0) - polls
            info = inspect(base, "/_xfake/media/" + result.media_id_string)
            with open(path, "rb") as f:
                want = hashlib.sha256(f.read()).hexdigest()
            problems = []
            if info["sha256"] != want:
                problems.append(f"sha256 {info['sha256']}, file {want}")
            if info["state"] != "succeeded" or info["processing"] != processed:
                problems.append(f"state {info['state']}, processing {info['processing']}")
            final = getattr(result, "processing_info", None)
            if processed and (polls < 1 or not final or final.get("state") != "succeeded"):
                problems.append(f"tweepy returned {final} after {polls} STATUS polls")
            verdict = "sha256 OK" if not problems else "sha256 MISMATCH" if info["sha256"] != want else "FAILED"
            print(f"{label} {verdict}  segments={info['segments']} status_polls={polls}"
                  + ("  " + "; ".join(problems) if problems else ""), flush=True)
            failed = failed or bool(problems)
        except Exception as e:  # noqa: BLE001 - report every case, then fail
            print(f"{label} FAILED  {type(e).__name__}: {e}", flush=True)
            failed = True
    failed = alt_text(api, base, uploaded.get("image")) or failed
    return 1 if failed else 0


# Alt text of 60 characters in more bytes: accents, a CJK word, an emoji.
ALT = "A brown dog runs across a meadow, über Gräser 漢字 🐕 (tweepy)"


def alt_text(api, base, media_id):
    """create_media_metadata on the uploaded image; True when it failed."""
    label = f"{'tweepy ' + tweepy.__version__:<22} {'v1.1':<7} {'alt':<6}"
    try:
        if media_id is None:
            raise RuntimeError("the image was not uploaded")
        api.create_media_metadata(media_id, ALT)
        info = inspect(base, "/_xfake/media/" + media_id)
        got = ((info.get("metadata") or {}).get("alt_text") or {}).get("text")
        problems = []
        if got != ALT:
            problems.append(f"emulator holds alt text {got!r}")
        if info.get("metadata_requests") != 1:
            problems.append(f"metadata_requests {info.get('metadata_requests')}, want 1")
        verdict = "alt_text OK" if not problems else "FAILED"
        print(f"{label} {verdict}  create_media_metadata chars={len(ALT)} bytes={len(ALT.encode())}"
              + ("  " + "; ".join(problems) if problems else ""), flush=True)
        return bool(problems)
    except Exception as e:  # noqa: BLE001
        print(f"{label} FAILED  {type(e).__name__}: {e}", flush=True)
        return True


if __name__ == "__main__":
    sys.exit(main())
