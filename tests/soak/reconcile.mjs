// What the soak checks, from three independent accounts of one run: the records of each client
// instance (a page load, or the Node process: what track() accepted, the SDK's stats(), and the
// wire recorder's log of every request and its outcome), the events the emulator stored, and
// the emulator's dev stats.

const seqOf = (e) => (e.properties && e.properties.seq) ?? (e.traits && e.traits.seq) ?? null;
const sum = (xs, f) => xs.reduce((a, x) => a + (f(x) || 0), 0);
const sample = (xs, k = 8) => (xs.length <= k ? xs.join(", ") : xs.slice(0, k).join(", ") + `, ... (${xs.length})`);
const isRequest = (w) => w.kind === "ingest" || w.kind === "mint";
const answered = (w) => typeof w.outcome === "number";
const ok2xx = (w) => answered(w) && w.outcome >= 200 && w.outcome < 300;

// A list of checks. Each has a status: "ok", "fail", or "known" (fails because of a known SDK
// bug, listed in soak.mjs's KNOWN_BUGS: reported, not counted as a failure).
export class Checks {
  constructor() {
    this.list = [];
  }
  add(name, ok, detail = "") {
    this.list.push({ name, ok: !!ok, status: ok ? "ok" : "fail", detail: String(detail) });
    return !!ok;
  }
  // A check that fails while SDK bug `bug` is there. `strict`: the scenario reproduces the bug
  // every time, so a pass means it was fixed and its KNOWN_BUGS entry should go (a failure until
  // it does).
  known(bug, name, ok, detail = "", { strict = false } = {}) {
    if (ok && strict) {
      return this.add(name, false, `${bug} no longer reproduces: remove it from KNOWN_BUGS in tests/soak/soak.mjs and make this an ordinary check (${detail})`);
    }
    this.list.push({ name, ok: !!ok, status: ok ? "ok" : "known", bug, detail: String(detail) });
    return true;
  }
  get ok() {
    return this.list.every((c) => c.status !== "fail");
  }
}

// The accepted event numbers of all instances: a Set, plus those accepted twice and the errors.
export function acceptedOf(records) {
  const seen = new Set();
  const twice = [];
  for (const r of records) {
    for (const [a, b] of r.accepted) {
      for (let s = a; s < b; s++) {
        if (seen.has(s)) twice.push(s);
        seen.add(s);
      }
    }
  }
  return { seqs: seen, twice, trackErrors: records.flatMap((r) => r.trackErrors) };
}

// Stored events against accepted ones: lost, stored twice, unexpected, identities.
// `whoFor(seq)` is the identity the event was recorded under ("anon" or a user id).
export function checkStored(c, { records, events, whoFor, run, expectN }) {
  const acc = acceptedOf(records);
  const mine = events.filter((e) => (e.properties?.run ?? e.traits?.run) === run);
  c.add(
    "track() accepted every event once",
    acc.trackErrors.length === 0 && acc.twice.length === 0 && (expectN === undefined || acc.seqs.size === expectN),
    `${acc.seqs.size} accepted` + (expectN !== undefined ? ` of ${expectN}` : "") +
      (acc.trackErrors.length ? `; errors: ${JSON.stringify(acc.trackErrors.slice(0, 3))}` : "") +
      (acc.twice.length ? `; twice: ${sample(acc.twice)}` : ""),
  );
  const bySeq = new Map();
  for (const e of mine) {
    const s = seqOf(e);
    if (!bySeq.has(s)) bySeq.set(s, []);
    bySeq.get(s).push(e);
  }
  const lost = [...acc.seqs].filter((s) => !bySeq.has(s)).sort((a, b) => a - b);
  const twice = [...bySeq].filter(([, l]) => l.length > 1).map(([s]) => s);
  const unexpected = [...bySeq.keys()].filter((s) => !acc.seqs.has(s));
  const ids = new Set(mine.map((e) => e.message_id));
  c.add("zero lost", lost.length === 0, lost.length ? `lost: ${sample(lost)}` : `${bySeq.size} distinct events stored`);
  c.add(
    "zero stored twice",
    twice.length === 0 && ids.size === mine.length && unexpected.length === 0,
    `${mine.length} rows, ${ids.size} distinct message_ids` +
      (twice.length ? `; stored twice: ${sample(twice)}` : "") +
      (unexpected.length ? `; never accepted: ${sample(unexpected)}` : ""),
  );
  // The anonymous id each accepted event was recorded under. A client instance that called
  // reset() before event s recorded s under its next anonymous id (its anonymousIds, in order);
  // where that list is incomplete (a reset before the module was ready), any id of the run will do.
  const anon = new Set(records.flatMap((r) => [r.anonymousId, ...(r.anonymousIds || [])]));
  const anonOf = new Map();
  let resets = 0;
  for (const r of records) {
    const ids = r.anonymousIds || [];
    const rs = r.resets || [];
    resets += rs.length;
    if (ids.length !== rs.length + 1) continue;
    for (const [a, b] of r.accepted) {
      for (let s = a; s < b; s++) anonOf.set(s, ids[rs.filter((x) => x <= s).length]);
    }
  }
  const wrong = mine.filter((e) => {
    const s = seqOf(e);
    const who = whoFor(s);
    const id = anonOf.has(s) ? e.anonymous_id === anonOf.get(s) : anon.has(e.anonymous_id);
    if (who === "anon") return e.user_id !== null || !id;
    return e.user_id !== who || !id;
  });
  c.add(
    "each stored under the identity it was recorded with (across reset())",
    wrong.length === 0,
    wrong.length
      ? `wrong: ${wrong.slice(0, 3).map((e) => `seq ${seqOf(e)} as ${e.user_id}/${e.anonymous_id}, expected ${whoFor(seqOf(e))}/${anonOf.get(seqOf(e)) ?? "any"}`).join("; ")}`
      : `${new Set(mine.map((e) => e.user_id ?? "anon")).size} identities, ${anon.size} anonymous ids, ${resets} reset() calls`,
  );
  return { accepted: acc.seqs.size, stored: bySeq.size, rows: mine.length, lost: lost.length, twice: twice.length, lostSeqs: lost };
}

// Sums of the SDK's stats() over instances.
export function statsSum(records) {
  const dropped = {};
  for (const r of records) for (const [k, v] of Object.entries(r.stats.dropped || {})) dropped[k] = (dropped[k] || 0) + v;
  const f = (k) => sum(records, (r) => r.stats[k]);
  return {
    recorded: f("recorded"), sent: f("sent"), duplicates: f("duplicates"), retried: f("retried"), requests: f("requests"),
    mints: f("mints"), remints: f("remints"), keepaliveRequests: f("keepaliveRequests"), restored: f("restored"),
    unsaved: f("unsaved"), saveFailures: f("saveFailures"), dropped, droppedTotal: f("droppedTotal"),
  };
}

// The SDK's stats() against the wire recorder, instance by instance. The SDK counts a request
// when it makes it, and calls fetch once a large body is compressed (asynchronously): a page
// unloaded meanwhile never sends it. One ingestion request is in flight at a time, so an
// unloaded page may count one request more than the wire has.
export function checkSdkVsWire(c, records) {
  const bad = [];
  for (const r of records) {
    const reqs = r.wire.filter(isRequest);
    const mints = reqs.filter((w) => w.kind === "mint");
    const notSent = r.stats.requests - reqs.length;
    const done = reqs.filter((w) => w.kind === "ingest" && ok2xx(w));
    const parsed = done.filter((w) => typeof w.accepted === "number");
    const unread = done.filter((w) => typeof w.accepted !== "number");
    const unsure = unread.some((w) => w.events === null) ? Infinity : sum(unread, (w) => w.events);
    const sent = sum(parsed, (w) => w.accepted + w.duplicates);
    const dups = sum(parsed, (w) => w.duplicates);
    if (notSent < 0 || notSent > (r.unloaded ? 1 : 0)) bad.push(`load ${r.inst}: stats().requests ${r.stats.requests}, wire ${reqs.length}`);
    if (r.stats.mints !== mints.length) bad.push(`load ${r.inst}: stats().mints ${r.stats.mints}, wire ${mints.length}`);
    if (Math.abs(r.stats.sent - sent) > unsure) bad.push(`load ${r.inst}: stats().sent ${r.stats.sent}, wire ${sent} (+/- ${unsure})`);
    if (Math.abs(r.stats.duplicates - dups) > unsure) bad.push(`load ${r.inst}: stats().duplicates ${r.stats.duplicates}, wire ${dups}`);
  }
  c.add("stats() matches the wire (requests, mints, sent, duplicates)", bad.length === 0, bad.join("; ") || `${records.length} client instance(s)`);
}

// The wire recorder against the emulator's dev stats, over one emulator's whole life. A request
// the client saw answered was counted by the emulator; one it never saw answered (timed out,
// network error, page unloaded) may or may not have been. Events and mints the emulator took
// but whose answer was a fault `after_commit` are known from the fault id in the answer.
export function checkWireVsServer(c, { records, server, faultKinds }) {
  const wire = records.flatMap((r) => r.wire).filter(isRequest);
  const isLost = (w) => w.fault !== undefined && faultKinds[w.fault] === "lost answer";
  // Answered, with a body that says what the emulator did (an error answer read before the
  // page went away could still be a lost answer).
  const known = (w) => answered(w) && (w.fault !== undefined || w.code !== undefined || typeof w.accepted === "number" || !!w.token);
  const route = (k) => server.by_route[k] || 0;
  const serverReqs = route("POST /api/ingestion/track/") + route("POST /api/auth/session/");
  const seen = wire.filter(answered).length;
  const unseen = wire.length - seen;
  c.add(
    "emulator's request count within what the client saw answered and what it sent",
    seen <= serverReqs && serverReqs <= seen + unseen,
    `emulator ${serverReqs}; client answered ${seen}, unanswered ${unseen}`,
  );
  const ingest = wire.filter((w) => w.kind === "ingest");
  const delivered = sum(ingest.filter((w) => ok2xx(w) && typeof w.accepted === "number"), (w) => w.accepted + w.duplicates);
  const lostAnswers = sum(ingest.filter(isLost), (w) => w.events);
  // A gzip body a page went away before inflating has an unknown size: no upper bound then.
  const unsureReqs = ingest.filter((w) => !known(w) || (ok2xx(w) && typeof w.accepted !== "number"));
  const unsized = unsureReqs.filter((w) => w.events === null).length;
  const unsure = unsized ? Infinity : sum(unsureReqs, (w) => w.events);
  const serverEvents = server.events_stored + server.duplicates + server.rejected;
  const extra = serverEvents - delivered - lostAnswers;
  c.add(
    "emulator's events (stored + duplicates) = answered + lost answers (+ unanswered)",
    extra >= 0 && extra <= unsure,
    `emulator ${server.events_stored} + ${server.duplicates} dup + ${server.rejected} rejected; client saw ${delivered} answered, ` +
      `${lostAnswers} in lost answers, ${unsized ? `${unsized} unanswered request(s) of unknown size` : unsure} in unanswered requests; emulator took ${extra} of those`,
  );
  const mints = wire.filter((w) => w.kind === "mint");
  const tokens = mints.filter((w) => w.token).length;
  const lostMints = mints.filter(isLost).length;
  const unsureMints = mints.filter((w) => !known(w) || (w.outcome === 200 && !w.token)).length;
  const extraMints = server.mints - tokens - lostMints;
  c.add(
    "emulator's mints = tokens received + lost answers (+ unanswered)",
    extraMints >= 0 && extraMints <= unsureMints,
    `emulator ${server.mints}; client received ${tokens}, ${lostMints} lost answers, ${unsureMints} unanswered`,
  );
  return { serverReqs, seen, unseen };
}

// Session tokens per client instance and identity. The SDK renews a token half-way through
// lifetimes under two minutes (60 s before expiry otherwise), counted from the answer's arrival,
// and only while the identity is in use; a 401 from ingestion drops the token and re-mints once.
// So two tokens of one identity arrive at least ttl/2 apart unless a 401 or a reset() (which
// drops the tokens of the identities before it) came in between: tokens <= floor(span /
// (ttl/2)) + 1 + 401s + resets, span = first to last token of that identity in that instance.
// Also reported: the issue's "one per TTL window" figure (active span / ttl).
export function checkMints(c, { records, ttlS }) {
  let tokens = 0;
  let bound = 0;
  let perTtl = 0;
  let sessions = 0;
  let overPerTtl = 0;
  const over = [];
  for (const r of records) {
    const byUid = new Map();
    for (const w of r.wire.filter(isRequest)) {
      const uid = w.uid || "?";
      if (!byUid.has(uid)) byUid.set(uid, { tokens: [], first: w.t0, last: w.t0, u401: 0 });
      const u = byUid.get(uid);
      u.last = Math.max(u.last, w.t0);
      if (w.token) u.tokens.push(w.t1);
      if (w.kind === "ingest" && w.outcome === 401) u.u401 += 1;
    }
    for (const [uid, u] of byUid) {
      if (u.tokens.length === 0) continue;
      const half = (ttlS * 1000) / 2;
      const span = Math.max(...u.tokens) - Math.min(...u.tokens);
      // reset() drops the tokens of the identities before it: one more token each, at most.
      const b = Math.floor((span + 50) / half) + 1 + u.u401 + (r.resets || []).length;
      tokens += u.tokens.length;
      bound += b;
      const t = Math.ceil((u.last - u.first) / (ttlS * 1000)) + 1 + u.u401;
      perTtl += t;
      sessions += 1;
      if (u.tokens.length > t) overPerTtl += 1;
      if (u.tokens.length > b) over.push(`load ${r.inst} ${uid}: ${u.tokens.length} tokens in ${(span / 1000).toFixed(1)} s (bound ${b})`);
    }
  }
  c.add(
    "mints: at most one token per identity per half session lifetime, plus 401 re-mints",
    over.length === 0,
    over.join("; ") ||
      `${tokens} tokens, bound ${bound}; one per TTL window (ceil(active / ttl) + 1 + 401s) would allow ${perTtl} and is exceeded for ${overPerTtl} of ${sessions} identities`,
  );
  return { tokens, bound, perTtl, sessions, overPerTtl };
}

export function checkErrors(c, records, { allowConsoleErrors = false } = {}) {
  const all = records.flatMap((r) => r.errors);
  const bad = allowConsoleErrors ? all.filter((e) => e.what !== "console.error") : all;
  c.add(
    allowConsoleErrors ? "no unhandled rejection or uncaught error" : "no console error, uncaught error or unhandled rejection",
    bad.length === 0,
    bad.length ? bad.slice(0, 3).map((e) => `${e.what}: ${e.message}`).join(" | ") : `${all.length} console error(s) in all`,
  );
  return all;
}

export function checkQueue(c, records, maxQueueEvents) {
  const peak = Math.max(0, ...records.map((r) => r.peaks.pending));
  const peakQueued = Math.max(0, ...records.map((r) => r.peaks.queued));
  c.add(`queue within its bound (maxQueueEvents ${maxQueueEvents})`, peak <= maxQueueEvents && peakQueued <= maxQueueEvents, `peak pending ${peak}, peak queued ${peakQueued}`);
  return { peak, peakQueued };
}

// What the fault injection did, as the client saw it: answers by fault kind, and timeouts.
export function faultMix(records, faultKinds) {
  const wire = records.flatMap((r) => r.wire).filter(isRequest);
  const mix = { requests: wire.length, timeouts: 0 };
  for (const w of wire) {
    if (w.outcome === "timeout") mix.timeouts += 1;
    else if (w.fault !== undefined) {
      const k = faultKinds[w.fault] || "fault";
      mix[k] = (mix[k] || 0) + 1;
    }
  }
  return mix;
}

export function droppedText(dropped) {
  const e = Object.entries(dropped).filter(([, v]) => v > 0);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(", ") : "none";
}
