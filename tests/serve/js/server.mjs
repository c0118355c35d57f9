// Starts and stops a `frugal serve` process for the end-to-end tests.
//
// The server is started with --port 0; it prints exactly one line
//   frugal serve: listening on http://127.0.0.1:PORT
// on stderr once it accepts connections. We parse the port from that line, then wait for
// GET /health to answer {"status":"ok"}. SIGTERM drains the server and it must exit 0.
//
// Whatever happens, the child is SIGKILLed when this Node process exits, so a failed test never
// leaves a server behind.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const kListenRe = /^frugal serve: listening on http:\/\/127\.0\.0\.1:(\d+)$/;
const kStderrTailLines = 200;

// Resolves the binary and model directory from argv (positional: BIN MODEL_DIR) or the
// environment (FRUGAL_BIN, FRUGAL_MODEL). The model defaults to the repo's models/tiny-v4.
export function resolve_paths(argv = process.argv.slice(2)) {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const bin = argv[0] ?? process.env.FRUGAL_BIN ?? path.join(repo, 'build/release/src/cli/frugal');
  const model = argv[1] ?? process.env.FRUGAL_MODEL ?? path.join(repo, 'models/tiny-v4');
  if (!existsSync(bin)) throw new Error(`frugal binary not found: ${bin} (pass it as argv[1] or FRUGAL_BIN)`);
  if (!existsSync(model)) throw new Error(`model directory not found: ${model} (argv[2] or FRUGAL_MODEL)`);
  return { bin, model };
}

export class Server {
  constructor({ bin, model, parallel = 4, extra_args = [], start_timeout_ms = 120_000 }) {
    this.bin = bin;
    this.model = model;
    this.args = ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0',
                 '--parallel', String(parallel), ...extra_args];
    this.start_timeout_ms = start_timeout_ms;
    this.stderr_tail = [];     // last lines of the server's stderr, printed when a test fails
    this.listen_lines = 0;     // how many "listening on" lines were seen (must be exactly one)
    this.proc = null;
    this.exit = null;          // {code, signal} once the process has exited
    this.port = 0;
    this.base_url = '';
  }

  // Spawns the server and resolves once /health answers. Rejects (with the stderr tail) if the
  // server exits first or does not become ready within start_timeout_ms.
  async start() {
    const verbose = process.env.FRUGAL_SERVE_VERBOSE === '1';
    this.proc = spawn(this.bin, this.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    // Never leave the server behind, whatever way this process ends.
    const kill_on_exit = () => { if (this.proc && this.exit === null) this.proc.kill('SIGKILL'); };
    process.on('exit', kill_on_exit);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
    });

    const listening = new Promise((resolve, reject) => {
      let partial = '';
      this.proc.stderr.setEncoding('utf8');
      this.proc.stderr.on('data', (chunk) => {
        partial += chunk;
        const lines = partial.split('\n');
        partial = lines.pop();   // keep an unterminated line for the next chunk
        for (const line of lines) {
          if (verbose) process.stderr.write(`[server] ${line}\n`);
          this.stderr_tail.push(line);
          if (this.stderr_tail.length > kStderrTailLines) this.stderr_tail.shift();
          const m = kListenRe.exec(line);
          if (m) { this.listen_lines += 1; resolve(Number(m[1])); }
        }
      });
      this.proc.on('error', (e) => reject(new Error(`cannot start ${this.bin}: ${e.message}`)));
      this.exited.then((e) => reject(new Error(
        `server exited before listening (code ${e.code}, signal ${e.signal})\n${this.tail()}`)));
      setTimeout(() => reject(new Error(
        `server did not print its listening line within ${this.start_timeout_ms} ms\n${this.tail()}`)),
        this.start_timeout_ms).unref();
    });

    this.port = await listening;
    this.base_url = `http://127.0.0.1:${this.port}`;
    await this.wait_healthy();
    return this;
  }

  // The printed line means the server accepts; /health must then answer at once. We still retry
  // briefly so a slow first accept does not fail the test.
  async wait_healthy(timeout_ms = 10_000) {
    const deadline = Date.now() + timeout_ms;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`${this.base_url}/health`);
        const body = await r.text();
        if (r.status === 200 && JSON.parse(body).status === 'ok') return;
        last = `HTTP ${r.status}: ${body}`;
      } catch (e) {
        last = e.message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`GET /health never answered {"status":"ok"} (last: ${last})`);
  }

  // SIGTERM, then waits for the exit. Returns {code, signal}; SIGKILLs after timeout_ms and
  // returns {code: null, signal: 'SIGKILL', timed_out: true}.
  async stop(timeout_ms = 30_000) {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const timer = new Promise((r) => setTimeout(() => r(null), timeout_ms).unref());
    const e = await Promise.race([this.exited, timer]);
    if (e) return e;
    this.proc.kill('SIGKILL');
    await this.exited;
    return { code: null, signal: 'SIGKILL', timed_out: true };
  }

  // Immediate SIGKILL (used on failure paths).
  kill() {
    if (this.proc && this.exit === null) this.proc.kill('SIGKILL');
  }

  tail(n = 40) {
    const lines = this.stderr_tail.slice(-n);
    return lines.length ? `--- last ${lines.length} lines of server stderr ---\n${lines.join('\n')}` : '(server wrote nothing on stderr)';
  }
}
