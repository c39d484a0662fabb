'use strict';
// Uploads through the emulator with twitter-api-v2 (npm).
//
// Usage: node twitter_api_v2_upload.js <package> <dialect>...
//   package  twitter-api-v2 (1.29.1) or twitter-api-v2-122 (1.22.0, an npm
//            alias installed beside it)
//   dialect  v1.1    v1.uploadMedia, OAuth 1.0a (signatures verified)
//            v2      v2.uploadMedia on the dedicated endpoints, bearer
//            v2-cmd  v2.uploadMedia in the command style (1.22.0), bearer
//
// run.sh starts the emulator and sets XFAKE_URL, the credentials and
// XFAKE_MEDIA. The client's hosts are the exported constants of its
// dist/cjs/globals module, read at every request. They keep X's host names
// and get the emulator's scheme and port (http://upload.x.com:PORT/1.1/):
// the client picks a v1.1 body encoding from the host name (multipart only
// for upload.x.com; with any other host it sends media/upload.json
// urlencoded, the binary segment mangled), so swapping the host alone would
// test a request X never gets. The client's http.Agent (httpAgent in its
// settings; https.request takes a plain http URL with it) resolves every
// name to 127.0.0.1, so nothing leaves loopback, and the OAuth 1.0a
// signature covers the same URL the emulator checks.
//
// Each upload waits on the client's own STATUS loop, then prints one line
// with the verdict of the emulator's sha256 against the file. After the
// uploads of a dialect come the calls made on them: createMediaMetadata
// (v1.1 media/metadata/create.json, v2 POST /2/media/metadata) sets alt
// text on the image, and on v1.1, the only dialect where this client has
// them, createMediaSubtitles attaches an uploaded SRT track to the processed
// video and deleteMediaSubtitles removes it. Each is checked against what
// the emulator holds (text, track, and exactly one applied call) and
// prints one line. The exit status is 1 when any case fails.

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const [pkg, ...dialects] = process.argv.slice(2);
const base = process.env.XFAKE_URL;
const media = process.env.XFAKE_MEDIA;

const port = new URL(base).port;
const globals = require(`${pkg}/dist/cjs/globals`);
for (const name of ['API_V2_PREFIX', 'API_V1_1_PREFIX', 'API_V1_1_UPLOAD_PREFIX']) {
  const u = new URL(globals[name]);
  u.protocol = 'http:';
  u.port = port;
  globals[name] = u.toString();
}
const { TwitterApi } = require(pkg);
const { version } = require(`${pkg}/package.json`);

// Every host name resolves to loopback.
function loopback(hostname, options, callback) {
  if (typeof options === 'function') [options, callback] = [{}, options];
  if (options && options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}
const settings = { httpAgent: new http.Agent({ keepAlive: true, lookup: loopback }) };
const oauth1 = new TwitterApi({
  appKey: process.env.XFAKE_CONSUMER_KEY,
  appSecret: process.env.XFAKE_CONSUMER_SECRET,
  accessToken: process.env.XFAKE_ACCESS_TOKEN,
  accessSecret: process.env.XFAKE_ACCESS_TOKEN_SECRET,
}, settings);
const bearer = new TwitterApi(process.env.XFAKE_BEARER, settings);

const file = name => path.join(media, name);
const v1 = (name, mimeType) => () => oauth1.v1.uploadMedia(file(name), { mimeType, target: 'tweet' });
const v2 = (name, mediaType) => () => bearer.v2.uploadMedia(fs.readFileSync(file(name)), { media_type: mediaType });

// [media, file, processed, upload]; v1.uploadMedia sends the CamelCase
// categories TweetVideo, TweetImage and TweetGif.
const cases = {
  'v1.1': [
    ['video', 'video.mp4', true, v1('video.mp4', 'video/mp4')],
    ['image', 'image.png', false, v1('image.png', 'image/png')],
    ['gif', 'anim.gif', true, v1('anim.gif', 'image/gif')],
    // The client's SRT type is text/plain; only with it does it send the
    // Subtitles category.
    ['srt', 'subs.srt', false, v1('subs.srt', 'text/plain')],
  ],
  'v2': [
    ['video', 'video.mp4', true, v2('video.mp4', 'video/mp4')],
    ['image', 'image.png', false, v2('image.png', 'image/png')],
  ],
};
cases['v2-cmd'] = cases.v2;

function inspect(p) {
  return new Promise((resolve, reject) => {
    http.get(base + p, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', c => { body += c; });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${p}: ${res.statusCode} ${body}`));
        else resolve(JSON.parse(body));
      });
    }).on('error', reject);
  });
}

async function statusPolls(dialect) {
  const { requests } = await inspect('/_xfake/stats');
  return requests[dialect === 'v1.1' ? 'v1.1-status' : 'status'] || 0;
}

// Alt text of more bytes than characters: accents, a CJK word, an emoji.
const ALT = 'A grey cat asleep on a keyboard, über Tasten \u6f22\u5b57 \u{1F408} (twitter-api-v2)';

// The calls made on uploaded media, per dialect: [name, call(ids) →
// problems].
const calls = {
  'v1.1': [
    ['alt', async ids => {
      await oauth1.v1.createMediaMetadata(ids.image, { alt_text: { text: ALT } });
      const info = await inspect(`/_xfake/media/${ids.image}`);
      return altProblems(info);
    }],
    ['subs', async ids => {
      const track = { media_id: ids.srt, language_code: 'EN', display_name: 'English' };
      const srt = await inspect(`/_xfake/media/${ids.srt}`);
      if (srt.media_category !== 'subtitles') return [`the track was uploaded as ${srt.media_category || 'no category'}`];
      await oauth1.v1.createMediaSubtitles(ids.video, [track]);
      let info = await inspect(`/_xfake/media/${ids.video}`);
      const problems = [];
      const got = JSON.stringify(info.subtitles || []);
      if (got !== JSON.stringify([{ id: ids.srt, language_code: 'EN', display_name: 'English' }])) {
        problems.push(`emulator holds subtitles ${got}`);
      }
      if (info.subtitles_create_requests !== 1) problems.push(`subtitles_create_requests ${info.subtitles_create_requests}, want 1`);
      await oauth1.v1.deleteMediaSubtitles(ids.video, 'EN');
      info = await inspect(`/_xfake/media/${ids.video}`);
      if ((info.subtitles || []).length || info.subtitles_delete_requests !== 1) {
        problems.push(`after deleteMediaSubtitles: ${JSON.stringify(info.subtitles)}, ${info.subtitles_delete_requests} deletes`);
      }
      return problems;
    }],
  ],
  'v2': [
    ['alt', async ids => {
      const res = await bearer.v2.createMediaMetadata(ids.image, { alt_text: { text: ALT } });
      const info = await inspect(`/_xfake/media/${ids.image}`);
      const problems = altProblems(info);
      const echoed = res && res.data && res.data.associated_metadata && res.data.associated_metadata.alt_text;
      if (!echoed || echoed.text !== ALT) problems.push(`answer ${JSON.stringify(res)}`);
      return problems;
    }],
  ],
};

function altProblems(info) {
  const problems = [];
  const got = info.metadata && info.metadata.alt_text && info.metadata.alt_text.text;
  if (got !== ALT) problems.push(`emulator holds alt text ${JSON.stringify(got)}`);
  if (info.metadata_requests !== 1) problems.push(`metadata_requests ${info.metadata_requests}, want 1`);
  return problems;
}

async function main() {
  let failed = false;
  for (const dialect of dialects) {
    if (!cases[dialect]) throw new Error(`unknown dialect ${dialect}`);
    const ids = {};
    for (const [name, fname, processed, upload] of cases[dialect]) {
      const label = `${`twitter-api-v2 ${version}`.padEnd(22)} ${dialect.padEnd(7)} ${name.padEnd(6)}`;
      try {
        const before = await statusPolls(dialect);
        const id = await upload();
        ids[name] = id;
        const polls = (await statusPolls(dialect)) - before;
        const info = await inspect(`/_xfake/media/${id}`);
        const want = crypto.createHash('sha256').update(fs.readFileSync(file(fname))).digest('hex');
        const problems = [];
        if (info.sha256 !== want) problems.push(`sha256 ${info.sha256}, file ${want}`);
        if (info.state !== 'succeeded' || info.processing !== processed) {
          problems.push(`state ${info.state}, processing ${info.processing}`);
        }
        if (processed && polls < 1) problems.push('the client returned without a STATUS poll');
        const verdict = !problems.length ? 'sha256 OK' : info.sha256 !== want ? 'sha256 MISMATCH' : 'FAILED';
        console.log(`${label} ${verdict}  segments=${info.segments} status_polls=${polls}${problems.length ? '  ' + problems.join('; ') : ''}`);
        if (problems.length) failed = true;
      } catch (e) {
        const detail = e.data ? JSON.stringify(e.data) : '';
        console.log(`${label} FAILED  ${e.message} ${detail}`.trimEnd());
        failed = true;
      }
    }
    // The 1.22.0 client predates createMediaMetadata on v2: v2-cmd has no calls.
    for (const [name, call] of dialect === 'v2-cmd' ? [] : calls[dialect] || []) {
      const label = `${`twitter-api-v2 ${version}`.padEnd(22)} ${dialect.padEnd(7)} ${name.padEnd(6)}`;
      try {
        const problems = await call(ids);
        const what = name === 'alt' ? `alt_text ${problems.length ? 'FAILED' : 'OK'}  createMediaMetadata`
          : `subtitles ${problems.length ? 'FAILED' : 'OK'}  createMediaSubtitles+deleteMediaSubtitles`;
        console.log(`${label} ${what}${problems.length ? '  ' + problems.join('; ') : ''}`);
        if (problems.length) failed = true;
      } catch (e) {
        const detail = e.data ? JSON.stringify(e.data) : '';
        console.log(`${label} FAILED  ${e.message} ${detail}`.trimEnd());
        failed = true;
      }
    }
  }
  return failed ? 1 : 0;
}

// v1.uploadMedia sends APPENDs in parallel and leaves the others' failures
// unhandled when one fails: report them instead of crashing.
process.on('unhandledRejection', e => {
  console.error(`unhandled: ${e && e.message}`);
  process.exitCode = 1;
});

main().then(code => { process.exitCode = process.exitCode || code; }, e => { console.error(e); process.exitCode = 1; })
  .finally(() => settings.httpAgent.destroy());
