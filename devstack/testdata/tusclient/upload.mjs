// Uploads a file to ytcaption's /v1/uploads with tus-js-client — the real
// third-party tus client — cutting the connection twice on the way and
// resuming each time: first the same Upload object is started again, then a
// new one is made from the upload's URL, as a restarted program would.
// Usage: node upload.mjs ENDPOINT API_KEY FILE NAME. Prints one JSON line.
import fs from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, key, file, name] = process.argv.slice(2);
const size = fs.statSync(file).size;
const cuts = [0.3, 0.65];
const events = [];

function options(onProgress) {
  return {
    endpoint,
    headers: { Authorization: `Bearer ${key}` },
    metadata: { filename: name },
    uploadSize: size,
    retryDelays: null, // the interruptions here are on purpose
    removeFingerprintOnSuccess: true,
    onProgress,
    onAfterResponse(req, res) {
      if (req.getMethod() === "HEAD") {
        events.push({ resumed_at: Number(res.getHeader("Upload-Offset")) });
      }
    },
  };
}

const done = new Promise((resolve, reject) => {
  let upload;
  const progress = (sent, total) => {
    if (cuts.length && sent >= cuts[0] * total) {
      const second = cuts.length === 1;
      cuts.shift();
      const url = upload.url;
      events.push({ cut_at_sent: sent });
      upload.abort(false).then(() => {
        if (second) {
          // A new client that only knows the URL.
          upload = new tus.Upload(fs.createReadStream(file), { ...options(progress), uploadUrl: url, onSuccess: () => resolve(upload.url), onError: reject });
        }
        upload.start();
      }, reject);
    }
  };
  upload = new tus.Upload(fs.createReadStream(file), { ...options(progress), onSuccess: () => resolve(upload.url), onError: reject });
  upload.start();
});

try {
  const url = await done;
  console.log(JSON.stringify({ url, size, events }));
} catch (err) {
  console.error(String(err));
  process.exit(1);
}
