// The child processes the soak starts (emulators, drivers, Node clients): each is killed, by its
// own pid, when the harness exits, however it exits.
const children = new Set();

// `group`: the child was spawned with `detached: true` (its own process group), and the whole
// group goes with it: a WebDriver driver and the browser it launched.
export function track(child, { group = false } = {}) {
  child.soakGroup = group;
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function kill(c, signal = "SIGKILL") {
  try {
    if (c.soakGroup) process.kill(-c.pid, signal);
    else c.kill(signal);
  } catch (_) { /* already gone */ }
}

export function killAll() {
  for (const c of children) {
    kill(c);
  }
  children.clear();
}

process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
