//! The emulator under load (issue 8): 50 concurrent clients on loopback, 200 requests each,
//! against the real binary with a file database. The mix is mostly ingestion batches (with a
//! secret key, and with session tokens minted from a public key), some session mints, some
//! batches sent again (duplicates) and some batches two clients send at the same moment.
//!
//! Checked: everything finishes within a generous bound; every request gets an answer, and the
//! answer it should get; every accepted event is stored exactly once (the events the API
//! returns are exactly the ids the clients sent, and the dev stats agree with the answers);
//! duplicates are absorbed, never stored twice; after a graceful stop, SQLite's
//! `PRAGMA integrity_check` is `ok` and the rows match.
//!
//! The latency table is printed (also without `--nocapture`). Reproduce the figures with
//! `cargo test -p segops-emulator --release --test load -- --nocapture` (CI runs it in the debug
//! build, like every test).

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const CLIENTS: usize = 50;
const REQUESTS: usize = 200;
/// Everything must be done within this (loopback; it takes a few seconds).
const BOUND: Duration = Duration::from_secs(60);
const ORIGIN: &str = "https://load.test";

/// What a request was, for the latency table and the checks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Mint,
    IngestSecret,
    IngestSession,
    Duplicate,
    Race,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mint => "session mint (pk_)",
            Kind::IngestSecret => "ingest, sk_ key",
            Kind::IngestSession => "ingest, session token",
            Kind::Duplicate => "ingest, a batch sent again",
            Kind::Race => "ingest, same batch by 2 clients",
        }
    }
}

/// Why an answer is not the one expected, or `None` when it is.
type Check = Box<dyn Fn(&Resp) -> Option<String>>;

/// One answered (or not) request.
struct Sample {
    kind: Kind,
    micros: u64,
    status: u16,
    accepted: u64,
    duplicates: u64,
    /// Why the answer was not the one expected, if it was not.
    wrong: Option<String>,
}

/// What one client did.
#[derive(Default)]
struct Outcome {
    samples: Vec<Sample>,
    /// Message ids of events this client sent first (not duplicates, not races).
    sent_ids: Vec<String>,
    /// Session-token events: message id -> the uid the token forces.
    forced: Vec<(String, String)>,
}

/// A small deterministic generator (SplitMix64), so every run sends the same mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn load_event(id: &str, client: usize, i: usize) -> Value {
    json!({
        "message_id": id,
        "type": "track",
        "event_type": "load_test",
        "user_id": format!("user-{client}"),
        "timestamp": "2026-11-24T03:01:16.123Z",
        "properties": {"client": client, "request": i, "cart_value": 42.5},
    })
}

/// The ids of race batch `r` (sent by two clients at once).
fn race_ids(r: usize) -> Vec<String> {
    (0..4).map(|k| format!("race-{r}-{k}")).collect()
}

/// One client: 200 requests on its own keep-alive connection.
fn run_client(
    emu: &Emulator,
    client: usize,
    sk: &str,
    pk: &str,
    start: &Barrier,
    race_at: &[usize],
) -> Outcome {
    let mut rng = Rng(0x5EED ^ ((client as u64) << 8));
    let mut out = Outcome::default();
    let mut token: Option<(String, String)> = None; // (Bearer ..., uid)
    let mut earlier: Vec<Vec<Value>> = Vec::new();
    start.wait();
    for i in 0..REQUESTS {
        // The first request mints; a few fixed request numbers are races (the same batch as
        // the partner client, at about the same moment); then about 8% mints, 10% duplicates,
        // and the rest is new ingestion batches, 3 in 8 of them with the session token.
        let roll = rng.below(100);
        let kind = if i == 0 {
            Kind::Mint
        } else if race_at.contains(&i) {
            Kind::Race
        } else if roll < 8 {
            Kind::Mint
        } else if roll < 18 && !earlier.is_empty() {
            Kind::Duplicate
        } else if roll < 48 {
            Kind::IngestSession
        } else {
            Kind::IngestSecret
        };
        let t = Instant::now();
        let (resp, expect): (Resp, Check) = match kind {
            Kind::Mint => {
                let uid = format!("load-user-{client}-{}", rng.below(3));
                let body = if rng.below(4) == 0 {
                    json!({"anonymous_id": uid})
                } else {
                    json!({"user_id": uid})
                };
                let r = emu.mint(pk, Some(ORIGIN), &body);
                if r.status == 200 {
                    if let Some(t) = r.body["token"].as_str() {
                        let forced = if body.get("user_id").is_some() {
                            format!("user:{uid}")
                        } else {
                            format!("anonymous:{uid}")
                        };
                        token = Some((bearer(t), forced));
                    }
                }
                let check = move |r: &Resp| {
                    (r.status != 200 || r.body["uid"].as_str().is_none())
                        .then(|| format!("mint: {} {}", r.status, r.text))
                };
                (r, Box::new(check))
            }
            Kind::IngestSecret | Kind::IngestSession => {
                let n = 1 + rng.below(6) as usize;
                let ids: Vec<String> = (0..n)
                    .map(|k| format!("c{client}-r{i}-e{k}-{}", rng.next()))
                    .collect();
                let batch: Vec<Value> = ids.iter().map(|id| load_event(id, client, i)).collect();
                let auth = match (&kind, &token) {
                    (Kind::IngestSession, Some((t, uid))) => {
                        out.forced
                            .extend(ids.iter().map(|id| (id.clone(), uid.clone())));
                        t.clone()
                    }
                    _ => sk.to_string(),
                };
                let r = emu.track(&auth, &batch);
                out.sent_ids.extend(ids);
                earlier.push(batch);
                let check = move |r: &Resp| {
                    (r.status != 200
                        || r.body["accepted"] != n
                        || r.body["duplicates"] != 0
                        || r.body["rejected"] != json!([]))
                    .then(|| format!("new batch of {n}: {} {}", r.status, r.text))
                };
                (r, Box::new(check))
            }
            Kind::Duplicate => {
                let batch = earlier[rng.below(earlier.len() as u64) as usize].clone();
                let n = batch.len();
                let r = emu.track(sk, &batch);
                let check = move |r: &Resp| {
                    (r.status != 200 || r.body["accepted"] != 0 || r.body["duplicates"] != n)
                        .then(|| format!("a batch of {n} again: {} {}", r.status, r.text))
                };
                (r, Box::new(check))
            }
            Kind::Race => {
                let r_index = race_at.iter().position(|&at| at == i).unwrap();
                let race = client / 2 * race_at.len() + r_index;
                let batch: Vec<Value> = race_ids(race)
                    .iter()
                    .map(|id| load_event(id, client, i))
                    .collect();
                let n = batch.len() as u64;
                let r = emu.track(sk, &batch);
                let check = move |r: &Resp| {
                    let a = r.body["accepted"].as_u64().unwrap_or(u64::MAX);
                    let d = r.body["duplicates"].as_u64().unwrap_or(u64::MAX);
                    (r.status != 200 || a.checked_add(d) != Some(n))
                        .then(|| format!("race batch: {} {}", r.status, r.text))
                };
                (r, Box::new(check))
            }
        };
        let micros = t.elapsed().as_micros() as u64;
        let wrong = expect(&resp);
        out.samples.push(Sample {
            kind,
            micros,
            status: resp.status,
            accepted: resp.body["accepted"].as_u64().unwrap_or(0),
            duplicates: resp.body["duplicates"].as_u64().unwrap_or(0),
            wrong,
        });
    }
    out
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

fn latency_table(samples: &[&Sample], wall: Duration) -> String {
    let mut by_kind: BTreeMap<Kind, Vec<u64>> = BTreeMap::new();
    for s in samples {
        by_kind.entry(s.kind).or_default().push(s.micros);
    }
    let mut all: Vec<u64> = samples.iter().map(|s| s.micros).collect();
    all.sort_unstable();
    let mut out = format!(
        "\nemulator load: {CLIENTS} clients x {REQUESTS} requests on loopback, {} requests in {:.2} s ({:.0} requests/s)\n",
        samples.len(),
        wall.as_secs_f64(),
        samples.len() as f64 / wall.as_secs_f64()
    );
    out.push_str(&format!(
        "    {:<32} {:>6} {:>9} {:>9} {:>9} {:>9}\n",
        "request", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
    ));
    let mut row = |name: &str, v: &[u64]| {
        out.push_str(&format!(
            "    {:<32} {:>6} {:>9} {:>9} {:>9} {:>9}\n",
            name,
            v.len(),
            ms(percentile(v, 50.0)),
            ms(percentile(v, 90.0)),
            ms(percentile(v, 99.0)),
            ms(*v.last().unwrap_or(&0))
        ));
    };
    for (kind, mut v) in by_kind {
        v.sort_unstable();
        row(kind.name(), &v);
    }
    row("all", &all);
    out
}

#[test]
fn fifty_clients_two_hundred_requests_each_nothing_lost() {
    let dir = TempDir::new("load");
    let db = dir.path().join("load.db");
    let db_arg = db.to_str().unwrap().to_string();
    let mut emu = Emulator::with(Opts::default().args(&["--db", &db_arg]));
    let owner = emu.owner();
    let sk = emu.secret_key(&owner);
    let pk_spec = emu.public_key(&owner, &[ORIGIN], false);
    let pk = pk_spec["key"].as_str().unwrap().to_string();
    // Count only the load itself.
    emu.delete("/api/dev/stats/", Some(&owner)).ok();

    // Two clients of a pair send the same race batches at the same request numbers.
    let race_at = [50, 120, 190];
    let start = Arc::new(Barrier::new(CLIENTS + 1));
    let began = Instant::now();
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (emu, sk, pk, start) = (&emu, &sk, &pk, start.clone());
                let race_at = &race_at;
                s.spawn(move || run_client(emu, c, sk, pk, &start, race_at))
            })
            .collect();
        start.wait();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread panicked"))
            .collect()
    });
    let wall = began.elapsed();

    let samples: Vec<&Sample> = outcomes.iter().flat_map(|o| &o.samples).collect();
    let table = latency_table(&samples, wall);
    // Straight to the terminal: shown without --nocapture too (the CI log keeps it).
    let _ = std::io::stderr().write_all(table.as_bytes());

    assert!(wall < BOUND, "the load took {wall:?}, over {BOUND:?}");
    // Every request was answered, with the answer it should get.
    assert_eq!(samples.len(), CLIENTS * REQUESTS);
    let wrong: Vec<&String> = samples.iter().filter_map(|s| s.wrong.as_ref()).collect();
    assert!(
        wrong.is_empty(),
        "{} wrong answers, first: {}",
        wrong.len(),
        wrong[0]
    );

    // The dev stats agree with the answers.
    let stats = emu.stats(&owner);
    let sum = |f: fn(&Sample) -> u64| samples.iter().map(|s| f(s)).sum::<u64>();
    let accepted = sum(|s| s.accepted);
    let duplicates = sum(|s| s.duplicates);
    assert_eq!(stats["requests"], (CLIENTS * REQUESTS) as u64, "{stats}");
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for s in &samples {
        *statuses.entry(s.status.to_string()).or_default() += 1;
    }
    let all_ok = BTreeMap::from([("200".to_string(), (CLIENTS * REQUESTS) as u64)]);
    assert_eq!(statuses, all_ok, "statuses the clients saw");
    assert_eq!(stats["by_status"], json!(statuses), "{stats}");
    assert_eq!(stats["events_stored"], accepted, "{stats}");
    assert_eq!(stats["duplicates"], duplicates, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}");
    let mints = samples.iter().filter(|s| s.kind == Kind::Mint).count() as u64;
    assert_eq!(stats["mints"], mints, "{stats}");

    // What the API returns is exactly what was sent, once each.
    let mut expected: HashSet<String> = outcomes
        .iter()
        .flat_map(|o| o.sent_ids.iter().cloned())
        .collect();
    assert_eq!(
        expected.len(),
        outcomes.iter().map(|o| o.sent_ids.len()).sum::<usize>(),
        "clients' own ids are unique"
    );
    let races = CLIENTS / 2 * race_at.len();
    for r in 0..races {
        expected.extend(race_ids(r));
    }
    let stored = emu.events(&owner);
    let stored_ids: Vec<&str> = stored
        .iter()
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = stored_ids.iter().copied().collect();
    assert_eq!(unique.len(), stored_ids.len(), "an event was stored twice");
    assert_eq!(
        stored.len() as u64,
        accepted,
        "stored rows vs accepted answers"
    );
    assert_eq!(
        unique,
        expected.iter().map(String::as_str).collect::<HashSet<_>>(),
        "the stored ids are exactly the sent ids"
    );
    let race_accepted: u64 = samples
        .iter()
        .filter(|s| s.kind == Kind::Race)
        .map(|s| s.accepted)
        .sum();
    assert_eq!(
        race_accepted,
        (races * 4) as u64,
        "each raced event accepted once"
    );
    // Session tokens forced their identity onto their events.
    let by_id: HashMap<&str, &Value> = stored
        .iter()
        .map(|e| (e["message_id"].as_str().unwrap(), e))
        .collect();
    let forced: Vec<&(String, String)> = outcomes.iter().flat_map(|o| &o.forced).collect();
    assert!(!forced.is_empty());
    for (id, uid) in forced {
        let e = by_id[id.as_str()];
        let (kind, value) = uid.split_once(':').unwrap();
        let field = if kind == "user" {
            "user_id"
        } else {
            "anonymous_id"
        };
        assert_eq!(e[field], value, "{e}");
        assert_eq!(e["auth"], "session");
    }

    // A graceful stop, then SQLite itself: intact, and holding what the API returned.
    emu.stop_gracefully();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let fk_problems: i64 = conn
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_problems, 0);
    let (rows, distinct): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows as u64, distinct as u64), (accepted, accepted));
}
