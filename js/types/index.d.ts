// Types of @segops/sdk: the same for the browser build, the Node build (import and require)
// and the CDN build's `SegOps.SegOpsClient`.
/** Stable codes of the errors the SDK throws. */
export type SegOpsErrorCode =
  | "invalid_config"
  | "invalid_argument"
  | "invalid_api_key"
  | "mcp_key_not_allowed"
  | "event_too_large"
  | "client_shut_down"
  /** The WebAssembly module could not load (network, CSP, blocker): `ready` rejects with it. */
  | "module_unavailable"
  /** `signUserId()` called in a browser bundle. */
  | "server_only";

/** What every SDK call throws on bad input: an Error with a stable `code` and the field. */
export interface SegOpsError extends Error {
  name: "SegOpsError";
  code: SegOpsErrorCode;
  /** The config field or argument the error is about, as you wrote it (`track.eventType`). */
  field?: string;
}

/** A value JSON can carry. Dates are sent as ISO strings; NaN and Infinity as null. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | Date
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

/** Event properties or user traits: a plain object of JSON values. */
export type Properties = { [key: string]: JsonValue | undefined };

/** Who the app's user is, as `getUser()` returns it. */
export type SegOpsUser =
  | {
      /** `undefined` means nobody, like returning null: `{ userId: currentUser?.id }` works. */
      userId: string | undefined;
      /** The visitor's anonymous id, to link the user to what they did before logging in. */
      anonymousId?: string;
      /** For public keys that require signed user ids: `signUserId()` from your backend. */
      userIdSig?: string;
      userIdTs?: number;
    }
  | { anonymousId: string; userId?: undefined };

/** An AI assistant to recognize in `trackPageView()`, in addition to the built-in ones. */
export interface AiProvider {
  /** Sent as `source_provider`. */
  name: string;
  /** Referrer hosts; each also matches its subdomains, label by label. */
  hosts: string[];
  /** When set, the referrer's path must start with it (like x.com's `/i/grok`). */
  pathPrefix?: string;
  /** `utm_source` values that identify it when the referrer is empty. */
  utmSources?: string[];
}

/**
 * What the visitor lets the SDK collect.
 * - `"granted"`: events are sent, and kept in localStorage across page loads when needed.
 * - `"pending"`: not answered yet. Events wait in memory only (within maxQueueEvents /
 *   maxQueueBytes): nothing is sent, not even a session-token request, and nothing is stored.
 * - `"denied"`: events are discarded as they are recorded (`stats().dropped.consent_denied`).
 */
export type SegOpsConsent = "granted" | "pending" | "denied";

/**
 * An event as `beforeSend` sees it, just before it is queued: after `getUser()`, with the
 * properties, traits and page context as plain JSON (Dates are ISO strings), before the caps
 * of `stats().truncated`. It is a fresh copy: edit it in place and return it, or return
 * another. `type` cannot be changed; the rest is checked as `track()` input is.
 */
export interface SegOpsEvent {
  type: "track" | "identify" | "page";
  eventType: string;
  /** Absent for anonymous events. */
  userId?: string;
  anonymousId?: string;
  /** RFC 3339. */
  timestamp: string;
  properties?: Properties;
  traits?: Properties;
  /** The page the event was recorded on (browsers): `{ page: { url, path, search, title, referrer } }`. */
  context?: Properties;
}

export interface SegOpsConfig {
  /** Base URL of the SegOps API, http or https; a trailing slash is fine. */
  apiUrl: string;
  /**
   * `pk_...` in browsers (exchanged for short-lived session tokens), `sk_...` on servers.
   * `mk_` keys are for MCP connectors and are refused.
   */
  apiKey: string;
  /** The current user, asked at every call that names nobody. Default: anonymous. */
  getUser?: () => SegOpsUser | null | undefined;
  /** Events queued that trigger a send before the interval is up. @default 20 */
  flushAt?: number;
  /** How long the first queued event waits for company. @default 2000 */
  flushIntervalMs?: number;
  /** Bound on queued events; overflow drops the oldest, counted. @default 20000 */
  maxQueueEvents?: number;
  /** Bound on queued bytes; overflow drops the oldest, counted. @default 8388608 (8 MiB) */
  maxQueueBytes?: number;
  /** Largest serialized event; a larger one throws `event_too_large`. @default 32768 */
  maxEventBytes?: number;
  /** Largest request body (the server's limit). @default 524288 (512 KiB) */
  maxBatchBytes?: number;
  /** A request with no answer after this long is aborted and retried. @default 10000 */
  requestTimeoutMs?: number;
  /** Log every delivery decision to the console. @default false */
  debug?: boolean;
  /** Extra AI assistants for `ai_referral_session`, checked before the built-in table. */
  aiProviders?: AiProvider[];
  /**
   * Browsers: a visit (`context.session_id`) ends after this long without an event, from
   * 60000 (1 minute) to 86400000 (24 hours). A visit also ends 24 hours after it began, and a
   * new one starts on an arrival from another AI assistant or another `utm_source` /
   * `utm_campaign`. @default 1800000 (30 minutes)
   */
  sessionTimeoutMs?: number;
  /**
   * Browsers: record `trackPageView()` on each route change of a single-page app
   * (`history.pushState`, `replaceState`, `popstate`) that changes the path, and once when the
   * client starts. Query-only and hash-only changes do not count, nor a second push of the
   * same path. Leave it off when the app calls `trackPageView()` itself. @default false
   */
  autoPageViews?: boolean;
  /**
   * The consent state for a visitor who has not chosen yet. @default "granted"
   *
   * A client starts in: the visitor's persisted choice (localStorage `segops.consent`, written
   * by setConsent / optIn / optOut) if there is one; else `"denied"` when the browser sends
   * Global Privacy Control (and respectGlobalPrivacyControl is true), unless this field is
   * `"granted"` explicitly; else this field.
   */
  consent?: SegOpsConsent;
  /**
   * Start denied when `navigator.globalPrivacyControl` is true, unless `consent: "granted"` is
   * given explicitly or the visitor granted consent earlier (setConsent / optIn). @default true
   */
  respectGlobalPrivacyControl?: boolean;
  /**
   * Called with each event just before it is queued: return it (edited or not) to keep it,
   * or `null` to drop it (`stats().dropped.before_send`). If it throws or returns anything
   * else, the event is kept unchanged, the first problem is logged with console.error and
   * each is counted in `stats().beforeSendErrors`. Events it records itself skip it; it is
   * not called while consent is denied.
   */
  beforeSend?: (event: SegOpsEvent) => SegOpsEvent | null;
}

/** When the event happened: a Date, epoch milliseconds, or an RFC 3339 string. Default: now. */
export type EventTime = Date | number | string;

export interface TrackEvent {
  /** The event's name: 1 to 200 characters. */
  eventType: string;
  userId?: string;
  anonymousId?: string;
  properties?: Properties;
  timestamp?: EventTime;
}

export interface IdentifyEvent {
  userId: string;
  anonymousId?: string;
  traits?: Properties;
  timestamp?: EventTime;
}

export interface PageEvent {
  /** Sent as `properties.name`. */
  name?: string;
  userId?: string;
  anonymousId?: string;
  properties?: Properties;
  timestamp?: EventTime;
}

export interface PageViewEvent {
  userId?: string;
  anonymousId?: string;
  properties?: Properties;
}

export interface SegOpsProblem {
  code: string;
  message: string;
}

/** Counts of what the client did. */
export interface SegOpsStats {
  /** Events accepted by track(), identify(), page() and trackPageView(). */
  recorded: number;
  /** Events in the bounded queue. */
  queued: number;
  /** Events not yet delivered: queued, waiting for a retry, or in flight. */
  pending: number;
  /** Events the server stored or already had. */
  sent: number;
  /** Of `sent`, those the server already had (a retry after a lost answer). */
  duplicates: number;
  /** Events sent again after a failed attempt. */
  retried: number;
  /** HTTP requests made, session mints included. */
  requests: number;
  /** Request body bytes before compression (bodies of 1 KiB and more go out gzipped). */
  bytesSent: number;
  /** Session tokens requested (public keys). */
  mints: number;
  /** Of `mints`, those caused by a 401 on a token. */
  remints: number;
  /** Requests sent with keepalive as the page was hidden. */
  keepaliveRequests: number;
  /** Events an earlier page saved and this one took up. */
  restored: number;
  /**
   * Events this page saved as it was hidden (or went into the back/forward cache) that another
   * page of the site took up and sends meanwhile: not sent from here, not lost.
   */
  handedOver: number;
  /** Events the last saved snapshot could not hold. */
  unsaved: number;
  /** Snapshots that could not be written (storage full or disabled). */
  saveFailures: number;
  /** Milliseconds left on the current identity's session token, or null. */
  tokenExpiresInMs: number | null;
  /**
   * Dropped events by reason: queue_overflow, retries_exhausted, too_large, stale_identity,
   * bad_request, consent_denied, before_send, a server code...
   */
  dropped: Record<string, number>;
  droppedTotal: number;
  lastError: SegOpsProblem | null;
  /** Why sending stopped for good (a refused key or session), or null. */
  halted: SegOpsProblem | null;
  /** The consent state now. */
  consent: SegOpsConsent;
  /**
   * Events queued with values shortened by the caps on properties, traits and context:
   * 10 levels of nesting (the object itself is level 1; deeper objects and arrays become the
   * string "[Object]" or "[Array]"), 256 keys per object or items per array (the first 256
   * are kept), 8,192 characters per string (keys included). Caps apply before maxEventBytes.
   */
  truncated: number;
  /** The values those caps cut, by cap. */
  truncatedBy: { depth: number; keys: number; length: number };
  /** Times beforeSend threw or returned something unusable (the event was kept unchanged). */
  beforeSendErrors: number;
  /** Bytes of the WebAssembly module's memory (0 before `ready`). */
  memoryBytes: number;
}

/**
 * The SegOps client. Construction returns at once and never blocks the page: calls made before
 * the WebAssembly module is ready are recorded (time, identity, page) and handed to it in order
 * when it is. In Node the module compiles synchronously, so a bad config throws here; in a
 * browser a bad config or a module that cannot load rejects `ready` and is logged once.
 */
export declare class SegOpsClient {
  constructor(config: SegOpsConfig);
  /**
   * Resolves when the module is ready and the calls made before were handed over; rejects with
   * a SegOpsError (`module_unavailable`, or the config's error) when it never will be. Nothing
   * needs to wait for it: calls are accepted before.
   */
  readonly ready: Promise<void>;
  /**
   * `track({ eventType, userId?, anonymousId?, properties?, timestamp? })`. Throws a SegOpsError
   * on bad input once the module is ready; before, the error is logged when the call is handed
   * over.
   */
  track(event: TrackEvent): void;
  /** `identify({ userId, anonymousId?, traits?, timestamp? })`: later calls that name nobody are about this user. */
  identify(event: IdentifyEvent): void;
  /** `page({ name?, userId?, anonymousId?, properties?, timestamp? })`: a `page_viewed` event. */
  page(event?: PageEvent): void;
  /**
   * A `page_viewed` event with the page's url, path, title, referrer and UTM parameters, and,
   * once per visit (not on reloads, route changes or in other tabs), an `ai_referral_session`
   * event when the visit started from an AI assistant. Does nothing outside a browser.
   */
  trackPageView(event?: PageViewEvent): void;
  /** Resolves when everything recorded before the call was delivered or given up on. */
  flush(): Promise<void>;
  /** Sends what is left, then stops: later calls throw `client_shut_down`. */
  shutdown(): Promise<void>;
  /** Counts of what happened. Before `ready`: zeros, with the calls waiting as `queued` and `pending`. */
  stats(): SegOpsStats;
  /** The visitor's anonymous id; `null` before `ready`. */
  readonly anonymousId: string | null;
  /**
   * The visit's id, sent as `context.session_id` on every browser event (with consent
   * granted, the tabs of an origin share it); `null` before `ready` and outside a browser.
   */
  readonly sessionId: string | null;
  /**
   * Logout: later calls get a new anonymous id and a new visit without attribution, and the old
   * identity's session tokens are dropped. Everything recorded before is still delivered, once,
   * under the old identity. Consent stays, and so do unsent events.
   */
  reset(): void;
  /** The consent state (before `ready`: the state the client starts in, or the last choice). */
  readonly consent: SegOpsConsent;
  /** What the visitor lets the SDK collect; kept in localStorage (`segops.consent`) at once. */
  setConsent(state: SegOpsConsent): void;
  /** `setConsent("denied")`. */
  optOut(): void;
  /** `setConsent("granted")`. */
  optIn(): void;
}
