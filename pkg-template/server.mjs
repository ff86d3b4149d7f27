// @segops/sdk/server: helpers for the app's backend (Node). Never import it in browser code:
// signUserId takes the public key's HMAC secret, which must stay on the server.
import sdk from "./node/segops_sdk.cjs";

export const { signUserId } = sdk;
