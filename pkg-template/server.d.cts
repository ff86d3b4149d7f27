// @segops/sdk/server for require(): see server.d.ts.
export { signUserId } from "./node/segops_sdk.cjs";
export type { SignUserIdArgs, SignedUserId, SegOpsError, SegOpsErrorCode } from "./node/segops_sdk.cjs";
