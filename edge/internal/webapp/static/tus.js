// A small tus 1.0 client (creation + core protocol): enough for the app's
// own uploads to /v1/uploads, resumable after a dropped connection. It sends
// the file in chunks, asks the server (HEAD) where it stands after a failure,
// and carries on from there.

const CHUNK = 8 << 20; // 8 MiB a PATCH

export async function upload(file, { csrf, onProgress = () => {}, signal } = {}) {
  const base = { "Tus-Resumable": "1.0.0", "X-CSRF-Token": csrf };
  const name = btoa(unescape(encodeURIComponent(file.name)));
  let r = await fetch("/v1/uploads", {
    method: "POST", credentials: "same-origin", signal,
    headers: { ...base, "Upload-Length": String(file.size), "Upload-Metadata": "filename " + name },
  });
  if (r.status !== 201) throw await failure(r);
  const location = new URL(r.headers.get("Location"), location0()).pathname;
  const id = location.split("/").pop();
  let offset = 0, retries = 0;
  while (offset < file.size) {
    try {
      r = await fetch(location, {
        method: "PATCH", credentials: "same-origin", signal,
        headers: { ...base, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
        body: file.slice(offset, offset + CHUNK),
      });
      if (r.status !== 204) throw await failure(r);
      offset = Number(r.headers.get("Upload-Offset"));
      retries = 0;
      onProgress(offset, file.size);
    } catch (e) {
      if (signal && signal.aborted) throw e;
      if (e.status && e.status < 500 && e.status !== 409) throw e; // the server refused: retrying will not help
      if (++retries > 5) throw e;
      await new Promise((res) => setTimeout(res, 500 * 2 ** retries));
      const head = await fetch(location, { method: "HEAD", credentials: "same-origin", headers: base, signal });
      if (!head.ok) throw await failure(head);
      offset = Number(head.headers.get("Upload-Offset"));
    }
  }
  return id;
}

const location0 = () => window.location.origin;

async function failure(r) {
  let code = "http_" + r.status, message = r.statusText;
  try {
    const b = await r.json();
    code = b.error.code;
    message = b.error.message;
  } catch { /* not JSON */ }
  const e = new Error(message);
  e.status = r.status;
  e.code = code;
  return e;
}
