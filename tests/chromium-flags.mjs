// The flags headless Chromium needs on the project's machines: it runs as root (no sandbox), and
// the network is closed, so everything that would phone home is turned off. Every harness that
// starts Chromium (tests/e2e, tests/consumers, tests/soak, bench) starts from these.
export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];
