// The soak's shared plan: which identity and which call each event number gets. Loaded as a
// classic script by the soak page (globalThis.soakCommon) and required by the Node client and the
// harness, so all three agree on what event `seq` should look like once stored.
(function (root) {
  // The identities a run switches between. "anon" is the client's own anonymous visitor.
  const IDENTITIES = ["anon", "alice", "bob", "carol", "dave", "erin"];

  // A small deterministic hash (mulberry32 step) of an integer and a seed, in [0, 1).
  function unit(n, seed) {
    let t = (n * 0x9e3779b1 + seed * 0x85ebca6b + 0x6d2b79f5) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  // A seeded pseudo-random generator for the harness's own choices (hide times, reload kinds).
  function rng(seed) {
    let i = 0;
    return () => unit(i++, seed);
  }

  // Identity blocks: event numbers are cut into blocks of 20 to 80 events; each block belongs to
  // one identity, drawn from the seed. Returns the identity name for `seq`.
  function blocksFor(n, seed) {
    const starts = [];
    let at = 0;
    let b = 0;
    while (at < n) {
      starts.push(at);
      at += 20 + Math.floor(unit(b++, seed ^ 0x51) * 61);
    }
    return starts;
  }

  function plan(n, seed) {
    const starts = blocksFor(n, seed);
    const who = new Array(n);
    const first = new Array(n).fill(false);
    let prev = null;
    for (let b = 0; b < starts.length; b++) {
      const end = b + 1 < starts.length ? starts[b + 1] : n;
      let id = IDENTITIES[Math.floor(unit(b, seed ^ 0xa7) * IDENTITIES.length)];
      if (id === prev) id = IDENTITIES[(IDENTITIES.indexOf(id) + 1) % IDENTITIES.length];
      for (let s = starts[b]; s < end; s++) who[s] = id;
      first[starts[b]] = true;
      prev = id;
    }
    // The call each event is made with: identify() on a switch to a user, page() now and then,
    // track() otherwise.
    const call = (seq) => {
      if (first[seq] && who[seq] !== "anon") return "identify";
      if (seq % 40 === 17) return "page";
      return "track";
    };
    // Logouts: every other switch from a user back to the anonymous visitor calls reset() just
    // before the event (so the last event of the user's block and the reset are in one tick).
    const resets = new Set();
    let back = 0;
    for (let b = 1; b < starts.length; b++) {
      const s = starts[b];
      if (who[s] === "anon" && who[s - 1] !== "anon" && back++ % 2 === 0) resets.add(s);
    }
    return { who, call, resets, switches: starts.length - 1 };
  }

  const EVENT_TYPES = ["product_viewed", "added_to_cart", "checkout_started", "search", "scrolled"];

  // Makes the SDK call for `seq` on `client`. `anonymousId` is the client's own; getUser() is
  // expected to return the identity `who` for this seq (the caller sets it before calling).
  function record(client, seq, p, run) {
    const kind = p.call(seq);
    if (kind === "identify") {
      client.identify({ userId: p.who[seq], traits: { seq, run, plan: "soak" } });
    } else if (kind === "page") {
      client.page({ name: "soak page", properties: { seq, run } });
    } else {
      client.track({
        eventType: EVENT_TYPES[seq % EVENT_TYPES.length],
        properties: { seq, run, sku: "sku-" + (seq % 97), price: (seq % 50) + 0.99, tags: ["a", "b", seq % 3] },
      });
    }
  }

  // getUser() for identity `id`: an explicit anonymous visitor for "anon" (a null would fall back
  // to identify()'s user), a user id otherwise.
  function userFor(id, anonymousId) {
    return id === "anon" ? { anonymousId } : { userId: id };
  }

  // The client a run records with, in Node and in the page alike: `getUser()` answers for the
  // identity of the event number last given to `use(seq)` (the plan's, or the run's one fixed
  // identity). `use(seq)` also calls reset() where the plan logs out; `resets` lists the event
  // numbers it did that before, and `anonymousIds` every anonymous id the client had.
  function newClient(SegOpsClient, cfg) {
    const p = cfg.identity ? null : plan(cfg.n, cfg.seed);
    let current = cfg.identity || "anon";
    const client = new SegOpsClient({
      apiUrl: cfg.api,
      apiKey: cfg.key,
      requestTimeoutMs: cfg.timeoutMs,
      flushAt: cfg.flushAt,
      getUser: () => userFor(current, client.anonymousId),
    });
    const resets = [];
    const anonymousIds = [];
    const noteId = () => {
      const id = client.anonymousId;
      if (id && !anonymousIds.includes(id)) anonymousIds.push(id);
    };
    noteId();
    client.ready.then(noteId, () => {});
    const use = (seq) => {
      if (p && p.resets.has(seq) && current !== "anon") {
        client.reset();
        resets.push(seq);
        noteId();
      }
      current = cfg.identity || p.who[seq];
    };
    return { client, plan: p, use, resets, anonymousIds };
  }

  // Accepted event numbers as compact ranges [[from, to_exclusive], ...].
  function addToRanges(ranges, seq) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === seq) last[1] = seq + 1;
    else ranges.push([seq, seq + 1]);
  }

  const api = { IDENTITIES, unit, rng, plan, record, newClient, addToRanges };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.soakCommon = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
