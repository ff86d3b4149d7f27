// A forwarding HTTP proxy that sends every host to 127.0.0.1 (same port): how WebKit reaches the
// test hosts (shop.test, chatgpt.com ...), since MiniBrowser has no host-resolver flag. Plain
// requests are forwarded with their Host header, https goes through CONNECT tunnels (the
// browser still talks TLS to the test server). The emulator on 127.0.0.1 is left off the proxy
// by the browser, so its requests and their Origin are the page's own.
import { createServer, request } from "node:http";
import { connect } from "node:net";

export async function startProxy() {
  const sockets = new Set();
  const server = createServer((req, res) => {
    let target;
    try {
      target = new URL(req.url);
    } catch {
      return res.writeHead(400).end("not a proxy request");
    }
    const headers = { ...req.headers };
    delete headers["proxy-connection"];
    const up = request(
      { host: "127.0.0.1", port: target.port || 80, method: req.method, path: target.pathname + target.search, headers, agent: false },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.headersSent ? res.destroy() : res.writeHead(502).end());
    req.pipe(up);
  });
  server.on("connect", (req, client, head) => {
    const port = Number(req.url.split(":").pop()) || 443;
    const up = connect(port, "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    for (const s of [up, client]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => { up.destroy(); client.destroy(); });
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: server.address().port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}
