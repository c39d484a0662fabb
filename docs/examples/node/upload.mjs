#!/usr/bin/env node
// Upload a file to X through mediagw's REST API with fetch (Node 18+),
// resuming after a broken connection.
//
//   node upload.mjs FILE MEDIA_TYPE [http://127.0.0.1:8080]
//
// Prints one JSON line: media_id, idempotency_key, resumes. The bearer
// token, if any, is read from MEDIAGW_TOKEN. See docs/clients.md.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";

const RETRIES = 10; // failures in a row without progress before giving up

async function sha256Of(path) {
  const h = createHash("sha256");
  for await (const block of createReadStream(path)) h.update(block);
  return h.digest("hex");
}

// The same file, type, account and X user always get the same key, so
// running this again resumes or replays the upload. Only a hash of an X
// user's token goes in, never the token.
function deriveKey(sha, size, mediaType, account = "", xToken = "") {
  const parts = [sha, String(size), account, mediaType];
  if (xToken) parts.push("x=" + createHash("sha256").update(xToken).digest("hex"));
  return "js-" + createHash("sha256").update(parts.join(":")).digest("hex").slice(0, 32);
}

// An RFC 7807 problem from mediagw.
class Problem extends Error {
  constructor(status, body, retryAfter) {
    super(`HTTP ${status} ${body.code ?? ""}: ${body.detail ?? ""}`);
    this.status = status;
    this.code = body.code;
    this.retryAfter = Number(body.retry_after_seconds ?? retryAfter ?? 0);
  }
  // Interrupted (503 + committed_bytes), another stream drives the key or
  // a wrong resume_offset (409), rate limits with Retry-After (429).
  retryable() {
    return [502, 503, 504, 409].includes(this.status) || (this.status === 429 && this.retryAfter > 0);
  }
}

async function call(url, init) {
  const resp = await fetch(url, init);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Problem(resp.status, body, resp.headers.get("retry-after"));
  return body;
}

export async function upload(base, path, mediaType, token) {
  const size = (await stat(path)).size;
  const sha = await sha256Of(path);
  const key = deriveKey(sha, size, mediaType);
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  let failures = 0, best = -1, resumes = 0, delay = 500;
  for (;;) {
    // Where does the upload stand? (404: never started.)
    let offset = 0, known = false;
    try {
      const state = await call(`${base}/v1/uploads/${key}`, { headers: auth });
      if (state.phase === "UPLOAD_PHASE_COMPLETED") return { resp: state.response, key, resumes };
      if (state.phase === "UPLOAD_PHASE_FAILED") throw new Error(`upload ${key} failed: ${JSON.stringify(state.error)}`);
      offset = Number(state.committed_bytes ?? 0);
      known = true;
    } catch (e) {
      if (e instanceof Problem && e.status !== 404 && !e.retryable()) throw e;
      if (!(e instanceof Problem) && !(e instanceof TypeError)) throw e; // TypeError: fetch failed
    }
    const q = new URLSearchParams({ media_type: mediaType, total_bytes: String(size), sha256: sha });
    if (known) q.set("resume_offset", String(offset)); // continues (or takes over) the key's upload
    let wait = 0;
    try {
      const body = offset < size ? Readable.toWeb(createReadStream(path, { start: offset })) : "";
      const resp = await call(`${base}/v1/media:upload?${q}`, {
        method: "POST", body, duplex: "half",
        headers: { ...auth, "idempotency-key": key, "content-type": "application/octet-stream" },
      });
      return { resp, key, resumes };
    } catch (e) {
      if (e instanceof Problem) {
        if (!e.retryable()) throw e;
        wait = e.retryAfter * 1000;
      } else if (!(e instanceof TypeError)) {
        throw e;
      } // else the connection broke
    }
    if (offset > best) [best, failures, delay] = [offset, 0, 500];
    if (++failures > RETRIES) throw new Error(`gave up after ${RETRIES} retries without progress; run again to resume (${key})`);
    await sleep(Math.max(wait, delay * (0.5 + Math.random())));
    delay = Math.min(delay * 1.6, 30000);
    resumes++;
  }
}

const [file, mediaType, base = "http://127.0.0.1:8080"] = process.argv.slice(2);
if (!file || !mediaType) {
  console.error("usage: node upload.mjs FILE MEDIA_TYPE [BASE_URL]");
  process.exit(2);
}
const { resp, key, resumes } = await upload(base.replace(/\/$/, ""), file, mediaType, process.env.MEDIAGW_TOKEN);
console.log(JSON.stringify({ media_id: resp.media_id, idempotency_key: key, resumes }));
