import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseServeArgs, serverUrl, UsageError } from "./serve.ts";
import { writeFinding } from "../corpus/store.ts";
import { sampleFinding } from "./_sample.ts";

Deno.test("serve: defaults bind loopback port 8080 over corpus/", () => {
  assert.deepEqual(parseServeArgs([]), {
    host: "127.0.0.1",
    port: 8080,
    corpus: "corpus",
    allowRemote: false,
    help: false,
  });
  const o = parseServeArgs(["--host", "::1", "--port", "0", "--corpus", "/tmp/c"]);
  assert.equal(o.host, "::1");
  assert.equal(o.port, 0);
  assert.equal(o.corpus, "/tmp/c");
  assert.equal(parseServeArgs(["--host=localhost"]).host, "localhost");
});

Deno.test("serve: bad flags are usage errors", () => {
  const bad: [string[], RegExp][] = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["--port", "http"], /--port http is not 0\.\.65535/],
    [["--port", "70000"], /not 0\.\.65535/],
    [["--port", "-1"], /--port/],
    [["--port"], /--port/],
    [["extra"], /positional/i],
    [["--host", ""], /--host is empty/],
    [["--corpus", ""], /--corpus is empty/],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseServeArgs(args),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("serve: a non-loopback host needs --allow-remote", () => {
  for (const host of ["0.0.0.0", "192.168.1.5", "::", "example.com"]) {
    assert.throws(
      () => parseServeArgs(["--host", host]),
      /not a loopback address; pass --allow-remote/,
    );
    assert.equal(parseServeArgs(["--host", host, "--allow-remote"]).allowRemote, true);
  }
  assert.equal(parseServeArgs(["--host", "127.0.0.2"]).host, "127.0.0.2");
});

Deno.test("serve: URLs bracket IPv6 addresses", () => {
  assert.equal(serverUrl("127.0.0.1", 8080), "http://127.0.0.1:8080/");
  assert.equal(serverUrl("::1", 9), "http://[::1]:9/");
});

const SERVE = fileURLToPath(new URL("./serve.ts", import.meta.url));

Deno.test("serve: the CLI exits 2 on a bad flag with one line that points to --help", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--allow-read", "--allow-net", SERVE, "--port", "x"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  const err = new TextDecoder().decode(out.stderr);
  assert.match(err, /--port x is not 0\.\.65535/);
  assert.match(err, /deno task dashboard --help/);
  assert.equal(err.trimEnd().split("\n").length, 1, err);
});

Deno.test("serve: the CLI prints the URL it serves and answers on it", async () => {
  const dir = await Deno.makeTempDir();
  await writeFinding(dir, sampleFinding(1));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-check",
      "--allow-read",
      "--allow-write",
      "--allow-net",
      SERVE,
      "--port",
      "0",
      "--corpus",
      dir,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const url = text.match(/shadowfuzz dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/)?.[1];
    assert.ok(url, `no URL in ${JSON.stringify(text)}`);
    const res = await fetch(`${url}api/findings`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).findings[0].id, sampleFinding(1).id);
    await reader.cancel();
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
