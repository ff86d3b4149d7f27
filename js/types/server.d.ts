// Types of @segops/sdk/server (Node only).
import type { SegOpsError, SegOpsErrorCode } from "./index.js";
export type { SegOpsError, SegOpsErrorCode };
export interface SignUserIdArgs {
  /** The public key's hmac_secret, from key creation. Keep it on your server. */
  secret: string;
  userId: string;
  /** The signing time (default now): a Date or epoch milliseconds. */
  now?: Date | number;
}
export interface SignedUserId {
  userId: string;
  userIdSig: string;
  /** Unix seconds; the server accepts a signature from 300 s in the past to 60 s ahead. */
  userIdTs: number;
}
/**
 * Signs a user id with a public key's HMAC secret, on the app's server: the page's `getUser()`
 * returns the result (a signature is accepted for 300 seconds). Throws a SegOpsError on bad
 * input.
 */
export declare function signUserId(args: SignUserIdArgs): SignedUserId;
