// @segops/sdk/server as browser bundles see it: signing needs the public key's HMAC secret,
// which must never reach a browser, so the signer is not shipped there.
export function signUserId() {
  throw new Error(
    "@segops/sdk/server: signUserId runs on your server (Node) only; sign the user id there and send the result to the page",
  );
}
