#!/usr/bin/env bash
# make conformance: real X clients upload through the emulator.
#
# Installs the clients when missing (tweepy from Debian, twitter-api-v2 from
# npm at the versions pinned in package-lock.json, into ./node_modules here),
# builds cmd/xfake and starts it on a loopback port with OAuth 1.0a
# signature checks and a bearer token, then runs tweepy_upload.py and
# twitter_api_v2_upload.js. Each upload prints one line with the verdict of the
# emulator's sha256 against the file, and each call made on the uploads
# (alt text, subtitles) one line with the verdict of what the emulator holds;
# any failure makes the run fail. The emulator is stopped on exit, whatever
# happens.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
	if [ -z "$apt_updated" ]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		apt_updated=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Clients. Debian's python3 is the one python3-tweepy installs into.
python=/usr/bin/python3
if ! dpkg -s python3-tweepy >/dev/null 2>&1; then
	echo "conformance: installing python3-tweepy (Debian)"
	apt_install python3-tweepy
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "conformance: installing nodejs and npm (Debian)"
	apt_install nodejs npm
fi
stamp="$here/node_modules/.conformance-lock"
if ! cmp -s "$here/package-lock.json" "$stamp" 2>/dev/null; then
	echo "conformance: installing twitter-api-v2 (npm ci)"
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	cp "$here/package-lock.json" "$stamp"
fi

# The emulator, on a loopback port it picks. Scratch files go to the
# repository's git-ignored .tmp/, out of the shared temp directory.
mkdir -p "$root/.tmp"
tmp="$(mktemp -d "$root/.tmp/conformance.XXXXXX")"
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
(cd "$root" && go build -o "$tmp/xfake" ./cmd/xfake)

export XFAKE_CONSUMER_KEY=conformance-consumer-key XFAKE_CONSUMER_SECRET=conformance-consumer-secret
export XFAKE_ACCESS_TOKEN=conformance-access-token XFAKE_ACCESS_TOKEN_SECRET=conformance-access-token-secret
export XFAKE_BEARER=conformance-bearer
"$tmp/xfake" --addr 127.0.0.1:0 --processing-time 2s --log-level warn --spill-dir "$tmp" \
	--token "$XFAKE_BEARER" \
	--consumer-key "$XFAKE_CONSUMER_KEY" --consumer-secret "$XFAKE_CONSUMER_SECRET" \
	--access-token "$XFAKE_ACCESS_TOKEN" --access-token-secret "$XFAKE_ACCESS_TOKEN_SECRET" \
	>"$tmp/xfake.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	if grep -q '^xfake listening on ' "$tmp/xfake.log"; then break; fi
	if ! kill -0 "$pid" 2>/dev/null; then cat "$tmp/xfake.log" >&2; exit 1; fi
	sleep 0.1
done
XFAKE_URL="$(sed -n 's/^xfake listening on \(http:[^ ]*\).*/\1/p' "$tmp/xfake.log" | head -1)"
if [ -z "$XFAKE_URL" ]; then echo "conformance: xfake did not start" >&2; cat "$tmp/xfake.log" >&2; exit 1; fi
export XFAKE_URL

# The media: valid leading bytes, random rest. The video spans three 1 MiB
# segments of every client.
media="$tmp/media"
mkdir -p "$media"
{ printf '\x00\x00\x00\x18ftypmp42'; head -c $((2621440 + 123)) /dev/urandom; } >"$media/video.mp4"
{ printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x01\x40\x00\x00\x00\xf0'; head -c 300000 /dev/urandom; } >"$media/image.png"
{ printf 'GIF89a\x40\x01\xf0\x00'; head -c 1500000 /dev/urandom; } >"$media/anim.gif"
printf '1\n00:00:00,500 --> 00:00:02,000\nHello from the subtitles track.\n\n2\n00:00:02,500 --> 00:00:04,000\nSecond cue.\n' >"$media/subs.srt"
export XFAKE_MEDIA="$media"

# Each client gets at most 90 s (a few seconds normally), so that a client
# polling STATUS forever cannot hold the run.
status=0
timeout 90 "$python" "$here/tweepy_upload.py" || status=1
(cd "$here" && timeout 90 node twitter_api_v2_upload.js twitter-api-v2 v1.1 v2) || status=1
(cd "$here" && timeout 90 node twitter_api_v2_upload.js twitter-api-v2-122 v2-cmd) || status=1
if grep -q . "$tmp/xfake.log" && grep -qv '^xfake listening on ' "$tmp/xfake.log"; then
	echo "conformance: the emulator logged:" >&2
	grep -v '^xfake listening on ' "$tmp/xfake.log" >&2
fi
if [ "$status" -ne 0 ]; then
	echo "conformance: FAILED" >&2
fi
exit "$status"
