// The editor's cue arithmetic, kept apart from the page so it stays plain.
// The limits are the cue shaper's (core/internal/render): the editor shows
// them as warnings and never applies them by itself.

export const MAX_LINE_CHARS = 42;
export const MAX_CPS = 17;
export const NUDGE = 0.1; // seconds per arrow press

const round = (t) => Math.round(t * 1000) / 1000;

// warnings says what in cue (and its next) breaks the shaper's limits.
export function warnings(cue, next) {
  const out = [];
  const lines = cue.text.split("\n");
  lines.forEach((l, i) => {
    if (l.length > MAX_LINE_CHARS) out.push(`Line ${lines.length > 1 ? i + 1 + " " : ""}is ${l.length} characters long; captions read best at ${MAX_LINE_CHARS} or fewer.`);
  });
  const dur = cue.end - cue.start;
  if (dur <= 0) out.push("It ends before it starts.");
  else {
    const cps = cue.text.replace(/\s+/g, " ").trim().length / dur;
    if (cps > MAX_CPS) out.push(`Reading speed is ${cps.toFixed(1)} characters per second; over ${MAX_CPS} is hard to follow.`);
  }
  if (!cue.text.trim()) out.push("It has no text.");
  if (next && next.start < cue.end) out.push("It overlaps the next cue.");
  return out;
}

// split cuts cues[i] in two at the word nearest its middle, sharing the
// time by characters.
export function split(cues, i) {
  const c = cues[i];
  const words = c.text.trim().split(/\s+/);
  if (words.length < 2) return cues;
  let best = 1, bestDiff = Infinity, acc = 0;
  const total = c.text.trim().length;
  for (let k = 1; k < words.length; k++) {
    acc += words[k - 1].length + 1;
    const diff = Math.abs(acc - total / 2);
    if (diff < bestDiff) { bestDiff = diff; best = k; }
  }
  const first = words.slice(0, best).join(" "), second = words.slice(best).join(" ");
  const at = round(c.start + (c.end - c.start) * (first.length / (first.length + second.length)));
  return [...cues.slice(0, i), { ...c, text: first, end: at }, { ...c, text: second, start: at }, ...cues.slice(i + 1)];
}

// merge joins cues[i] and cues[i+1].
export function merge(cues, i) {
  if (i + 1 >= cues.length) return cues;
  const a = cues[i], b = cues[i + 1];
  return [...cues.slice(0, i), { ...a, text: (a.text.trim() + " " + b.text.trim()).trim(), end: Math.max(a.end, b.end) }, ...cues.slice(i + 2)];
}

// nudge moves one edge of a cue by d seconds, never below 0.
export function nudge(cue, edge, d) {
  return { ...cue, [edge]: Math.max(0, round(cue[edge] + d)) };
}

// at is the index of the cue playing at time t, or -1.
export function at(cues, t) {
  for (let i = 0; i < cues.length; i++) if (t >= cues[i].start && t < cues[i].end) return i;
  return -1;
}

// stamp writes seconds as m:ss.t for a cue's times.
export function stamp(t) {
  const m = Math.floor(t / 60);
  const s = (t - m * 60).toFixed(2).padStart(5, "0");
  return `${m}:${s}`;
}
