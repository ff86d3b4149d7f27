// @segops/sdk/server: helpers for the app's backend (Node). The types come from the Node build.
export { signUserId } from "./node/index.js";
export type { SignUserIdArgs, SignedUserId, SegOpsError, SegOpsErrorCode } from "./node/index.js";
