#!/usr/bin/env node
// Load generator for `frugal serve` (no dependencies: Node 20's global fetch and a small SSE
// parser). Three modes:
//
//   throughput (default): for each concurrency level C, C clients each send K streaming requests
//     back to back; reports aggregate decode tok/s, its ratio to C=1, TTFT and inter-token
//     latency percentiles, and failures.
//   soak (--duration S): C clients for S seconds; a fraction of requests is aborted mid-stream to
//     exercise disconnects; samples the server's RSS every 5 s (--pid) and reports its growth
//     after warm-up; at the end, once idle, reads /metrics and checks that the gauges of active
//     sequences / KV use are back to 0.
//   prefix (--prefix): a ~P-token system prompt sent cold, then warm with another user message;
//     reports TTFT cold/warm, their ratio and cached_tokens.
//
// Every request sets "ignore_eos": true (a frugal extension) so it generates exactly max_tokens.
// Run `node bench/serve/load.mjs --help` for the options.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const kHelp = `usage: node bench/serve/load.mjs --url http://127.0.0.1:PORT [options]
  --concurrency LIST        concurrency levels, e.g. 1,2,4,8,16 (default 1,2,4,8); soak uses the largest
  --requests-per-client K   requests each client sends per level (default 4; prefix mode: repeats)
  --max-tokens M            completion tokens per request (default 128)
  --prompt-tokens P         approximate prompt length in tokens (default 64; calibrated with usage)
  --endpoint completions|chat   API used for throughput and soak (default completions)
  --model ID                model id (default: the first of GET /v1/models)
  --duration S              soak mode: run S seconds
  --abort-fraction F        soak: fraction of requests aborted mid-stream (default 0.2)
  --pid PID                 sample VmRSS of this process (/proc/PID/status)
  --idle-metrics REGEX      soak: metric names that must read 0 when idle (default:
                            ^frugal_(active_sequences|queue_depth|kv_cache_bytes|kv_cache_reserved_bytes)$)
  --prefix                  prefix-reuse mode
  --json FILE               also write the results as JSON
  --help`;

// ---- command line -------------------------------------------------------------------------

function parse_cli() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' }, concurrency: { type: 'string', default: '1,2,4,8' },
      'requests-per-client': { type: 'string', default: '4' }, 'max-tokens': { type: 'string', default: '128' },
      'prompt-tokens': { type: 'string', default: '64' }, endpoint: { type: 'string', default: 'completions' },
      model: { type: 'string' }, duration: { type: 'string' }, 'abort-fraction': { type: 'string', default: '0.2' },
      pid: { type: 'string' }, 'idle-metrics': { type: 'string' }, prefix: { type: 'boolean', default: false },
      json: { type: 'string' }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help) { console.log(kHelp); process.exit(0); }
  if (!values.url) { console.error(`--url is required\n${kHelp}`); process.exit(2); }
  const int = (name, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) { console.error(`--${name}: expected a positive integer, got ${v}`); process.exit(2); }
    return n;
  };
  const o = {
    url: values.url.replace(/\/+$/, ''),
    concurrency: values.concurrency.split(',').map((c) => int('concurrency', c)),
    requests_per_client: int('requests-per-client', values['requests-per-client']),
    max_tokens: int('max-tokens', values['max-tokens']),
    prompt_tokens: int('prompt-tokens', values['prompt-tokens']),
    endpoint: values.endpoint, model: values.model,
    duration_s: values.duration === undefined ? null : int('duration', values.duration),
    abort_fraction: Number(values['abort-fraction']),
    pid: values.pid === undefined ? null : int('pid', values.pid),
    idle_metrics: new RegExp(values['idle-metrics'] ??
      '^frugal_(active_sequences|queue_depth|kv_cache_bytes|kv_cache_reserved_bytes)$'),
    prefix: values.prefix, json: values.json,
  };
  if (!['completions', 'chat'].includes(o.endpoint)) { console.error('--endpoint: completions or chat'); process.exit(2); }
  return o;
}

// ---- statistics and formatting ------------------------------------------------------------

// Nearest-rank percentile of an unsorted list (null when empty).
function percentile(xs, p) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();   // milliseconds, monotonic

function print_table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padStart(widths[i])).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

// Resident set size of a process in bytes, from /proc/PID/status (null if unreadable).
function rss_bytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch { return null; }
}

// ---- one streaming request ----------------------------------------------------------------

// Calls on_event(json) for each `data: {json}` line of an SSE body; lines may be split across
// reads, so the unterminated tail is kept. Returns true if `data: [DONE]` was seen.
async function read_sse(body, on_event) {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true });
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '');
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') return true;
      on_event(JSON.parse(data));
    }
  }
  return false;
}

// Sends one streaming request and records its timeline. `abort_after` (a token count or null)
// aborts the stream once that many text chunks arrived. Never throws: errors land in .error.
async function stream_request(o, { prompt, system = null, abort_after = null }) {
  const chat = o.endpoint === 'chat' || system !== null;
  const body = {
    model: o.model, max_tokens: o.max_tokens, temperature: 0, stream: true,
    stream_options: { include_usage: true }, ignore_eos: true,
    ...(chat ? { messages: [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }] }
             : { prompt }),
  };
  const rec = { start: now(), token_times: [], completion_tokens: null, prompt_tokens: null,
                cached_tokens: null, finish_reason: null, aborted: false, error: null };
  const controller = new AbortController();
  try {
    const r = await fetch(`${o.url}/v1/${chat ? 'chat/completions' : 'completions'}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      signal: controller.signal });
    if (!r.ok) {
      const text = await r.text();
      let msg = text;
      try { msg = JSON.parse(text).error.message; } catch { /* not an error object */ }
      throw new Error(`HTTP ${r.status}: ${msg}`);
    }
    const done = await read_sse(r.body, (chunk) => {
      if (chunk.error) throw new Error(`error in stream: ${chunk.error.message}`);
      if (chunk.usage) {
        rec.completion_tokens = chunk.usage.completion_tokens;
        rec.prompt_tokens = chunk.usage.prompt_tokens;
        rec.cached_tokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? null;
      }
      for (const c of chunk.choices ?? []) {
        const text = chat ? (c.delta?.content || c.delta?.reasoning_content) : c.text;
        if (text) rec.token_times.push(now());
        if (c.finish_reason) rec.finish_reason = c.finish_reason;
      }
      if (abort_after !== null && rec.token_times.length >= abort_after) {
        rec.aborted = true;
        controller.abort();
      }
    });
    if (!done) throw new Error('stream ended without data: [DONE]');
    if (rec.completion_tokens === null) throw new Error('no usage chunk despite include_usage');
    if (rec.completion_tokens !== o.max_tokens) {
      throw new Error(`generated ${rec.completion_tokens} tokens, expected ${o.max_tokens} (ignore_eos)`);
    }
  } catch (e) {
    if (!(rec.aborted && e.name === 'AbortError')) rec.error = e.message;
  }
  rec.end = now();
  return rec;
}

const tokens_per_chunk = (r) => r.completion_tokens / Math.max(1, r.token_times.length);
const ttft_ms = (r) => (r.token_times.length ? r.token_times[0] - r.start : null);
const itls_ms = (r) => r.token_times.slice(1).map((t, i) => t - r.token_times[i]);

// ---- prompts ------------------------------------------------------------------------------

const kWords = ('Now is the winter of our discontent made glorious summer by this sun of York and all ' +
  'the clouds that lowered upon our house in the deep bosom of the ocean buried').split(' ');

// A prompt of `words` words; `tag` goes first so that prompts of different clients share no
// prefix (the prefix cache would otherwise make TTFT meaningless).
function make_prompt(words, tag) {
  const out = [tag];
  for (let i = 0; i < words; ++i) out.push(kWords[i % kWords.length]);
  return out.join(' ');
}

// Words per token of this tokenizer, measured from usage.prompt_tokens of two short requests,
// so that --prompt-tokens P gives about P tokens.
async function calibrate_words(o, target_tokens) {
  const measure = async (words) => {
    const r = await fetch(`${o.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: o.model, prompt: make_prompt(words, 'Calibration.'), max_tokens: 1 }) });
    if (!r.ok) throw new Error(`calibration request: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()).usage.prompt_tokens;
  };
  const base = await measure(0);
  const probe = await measure(200);
  const per_word = (probe - base) / 200;
  if (!(per_word > 0)) throw new Error(`calibration: prompt_tokens ${base} for 0 words, ${probe} for 200`);
  return Math.max(1, Math.round((target_tokens - base) / per_word));
}

// ---- modes --------------------------------------------------------------------------------

async function run_level(o, c, words) {
  const rss_before = o.pid ? rss_bytes(o.pid) : null;
  const t0 = now();
  const clients = Array.from({ length: c }, async (_, ci) => {
    const recs = [];
    for (let k = 0; k < o.requests_per_client; ++k) {
      recs.push(await stream_request(o, { prompt: make_prompt(words, `Request ${c}-${ci}-${k}.`) }));
    }
    return recs;
  });
  const per_client = await Promise.all(clients);
  const wall_s = (now() - t0) / 1000;
  const recs = per_client.flat();
  const ok = recs.filter((r) => !r.error);
  const tokens = ok.reduce((s, r) => s + r.completion_tokens, 0);
  // Steady decode: from when every client has its first token until the first client's last
  // token, all C streams are busy; count the tokens in that window. A chunk may carry several
  // tokens (the server sends what is ready when it writes), so each chunk of a request counts
  // completion_tokens / chunks of that request.
  const first = Math.max(...per_client.map((rs) => ttft_ms(rs[0]) === null ? Infinity : rs[0].token_times[0]));
  const last = Math.min(...per_client.map((rs) => rs.at(-1).token_times.at(-1) ?? -Infinity));
  let steady = null;
  if (Number.isFinite(first) && Number.isFinite(last) && last > first) {
    const n = ok.reduce((s, r) => s + tokens_per_chunk(r) * r.token_times.filter((t) => t >= first && t <= last).length, 0);
    steady = n / ((last - first) / 1000);
  }
  const ttfts = ok.map(ttft_ms).filter((x) => x !== null);
  const itls = ok.flatMap(itls_ms);
  return {
    concurrency: c, requests: recs.length, failures: recs.length - ok.length,
    errors: [...new Set(recs.filter((r) => r.error).map((r) => r.error))].slice(0, 5),
    wall_s, completion_tokens: tokens, tok_s: tokens / wall_s, steady_tok_s: steady,
    prompt_tokens: ok[0]?.prompt_tokens ?? null,
    ttft_p50_ms: percentile(ttfts, 50), ttft_p99_ms: percentile(ttfts, 99),
    itl_p50_ms: percentile(itls, 50), itl_p99_ms: percentile(itls, 99),
    tokens_per_chunk: tokens / Math.max(1, ok.reduce((s, r) => s + r.token_times.length, 0)),
    rss_before, rss_after: o.pid ? rss_bytes(o.pid) : null,
  };
}

async function throughput_mode(o, words) {
  const levels = [];
  for (const c of o.concurrency) {
    const l = await run_level(o, c, words);
    levels.push(l);
    console.error(`  concurrency ${c}: ${fmt(l.tok_s)} tok/s, ${l.failures} failures` +
                  (l.errors.length ? ` (${l.errors.join('; ')})` : ''));
  }
  const base = levels.find((l) => l.concurrency === 1)?.tok_s ?? null;
  for (const l of levels) l.ratio_vs_c1 = base ? l.tok_s / base : null;
  console.log(`\nprompt ~${levels[0]?.prompt_tokens ?? '?'} tokens, max_tokens ${o.max_tokens}, ` +
              `${o.requests_per_client} requests per client, /v1/${o.endpoint}`);
  print_table(
    ['conc', 'tok/s', 'x c=1', 'steady tok/s', 'TTFT p50 ms', 'TTFT p99 ms', 'ITL p50 ms', 'ITL p99 ms', 'tok/chunk', 'failures'],
    levels.map((l) => [l.concurrency, fmt(l.tok_s), fmt(l.ratio_vs_c1, 2), fmt(l.steady_tok_s),
                       fmt(l.ttft_p50_ms), fmt(l.ttft_p99_ms), fmt(l.itl_p50_ms, 2), fmt(l.itl_p99_ms, 2),
                       fmt(l.tokens_per_chunk, 2), l.failures]));
  return { mode: 'throughput', levels, ok: levels.every((l) => l.failures === 0) };
}

async function soak_mode(o, words) {
  const c = Math.max(...o.concurrency);
  const duration_ms = o.duration_s * 1000;
  const t0 = now();
  const deadline = t0 + duration_ms;
  // RSS samples {t_s, bytes, prefix_bytes}. The prefix cache legitimately grows up to its budget
  // (--prefix-cache) as distinct prompts arrive, so growth is also reported net of
  // frugal_prefix_cache_bytes: what is left is what could be a leak.
  const rss = [];
  const sample = async () => {
    const t_s = (now() - t0) / 1000;
    const bytes = rss_bytes(o.pid);
    const prefix_bytes = await metric_value(o, 'frugal_prefix_cache_bytes');
    if (bytes !== null) rss.push({ t_s, bytes, prefix_bytes });
  };
  let sampler = null;
  if (o.pid) { await sample(); sampler = setInterval(sample, 5000); }
  const counts = { completed: 0, aborted: 0, failures: 0 };
  const errors = new Map();   // message -> count
  const ttfts = [];
  await Promise.all(Array.from({ length: c }, async (_, ci) => {
    for (let k = 0; now() < deadline; ++k) {
      // Aborted requests stop after a random number of tokens in [1, max_tokens).
      const abort_after = Math.random() < o.abort_fraction ? 1 + Math.floor(Math.random() * Math.max(1, o.max_tokens - 1)) : null;
      const r = await stream_request(o, { prompt: make_prompt(words, `Soak ${ci}-${k}.`), abort_after });
      if (r.error) { counts.failures += 1; errors.set(r.error, (errors.get(r.error) ?? 0) + 1); }
      else if (r.aborted) counts.aborted += 1;
      else { counts.completed += 1; ttfts.push(ttft_ms(r)); }
    }
  }));
  if (sampler) { clearInterval(sampler); await sample(); }
  // Growth after warm-up: the last sample against the first one taken after 20 % of the run.
  let growth_pct = null, net_growth_pct = null;
  const warm = rss.find((s) => s.t_s >= 0.2 * o.duration_s);
  if (warm && rss.length) {
    const end = rss.at(-1);
    growth_pct = 100 * (end.bytes - warm.bytes) / warm.bytes;
    if (warm.prefix_bytes !== null && end.prefix_bytes !== null) {
      const net = (x) => x.bytes - x.prefix_bytes;
      net_growth_pct = 100 * (net(end) - net(warm)) / net(warm);
    }
  }
  // Once idle, the server's gauges of live sequences and KV use must be back to 0. The server
  // may finish tearing down aborted sequences just after the last response, so retry briefly.
  let idle = null;
  for (let i = 0; i < 10; ++i) {
    await sleep(500);
    idle = await idle_metrics(o);
    if (idle.nonzero.length === 0) break;
  }
  const mib = (b) => fmt(b / 2 ** 20);
  console.log(`\nsoak: ${c} clients for ${o.duration_s} s on /v1/${o.endpoint}, abort fraction ${o.abort_fraction}`);
  console.log(`requests: ${counts.completed} completed, ${counts.aborted} aborted on purpose, ${counts.failures} failed`);
  for (const [msg, n] of errors) console.log(`  failure x${n}: ${msg}`);
  console.log(`TTFT p50 ${fmt(percentile(ttfts, 50))} ms, p99 ${fmt(percentile(ttfts, 99))} ms`);
  if (o.pid) {
    console.log(`RSS: start ${mib(rss[0]?.bytes)} MiB, after warm-up ${mib(warm?.bytes)} MiB, ` +
                `end ${mib(rss.at(-1)?.bytes)} MiB, max ${mib(Math.max(...rss.map((s) => s.bytes)))} MiB; ` +
                `growth after warm-up ${fmt(growth_pct, 2)} %`);
    console.log(`prefix cache: after warm-up ${mib(warm?.prefix_bytes)} MiB, end ${mib(rss.at(-1)?.prefix_bytes)} MiB; ` +
                `RSS growth after warm-up net of the prefix cache ${fmt(net_growth_pct, 2)} %`);
  }
  console.log('metrics when idle:');
  for (const [name, v] of idle.matched) console.log(`  ${name} ${v}`);
  if (!idle.matched.length) console.log(`  (no metric matched ${o.idle_metrics})`);
  if (idle.nonzero.length) console.log(`NOT IDLE: ${idle.nonzero.map(([n, v]) => `${n}=${v}`).join(', ')}`);
  return { mode: 'soak', concurrency: c, duration_s: o.duration_s, ...counts,
           errors: Object.fromEntries(errors), ttft_p50_ms: percentile(ttfts, 50), ttft_p99_ms: percentile(ttfts, 99),
           rss, rss_growth_after_warmup_pct: growth_pct, rss_net_of_prefix_cache_growth_pct: net_growth_pct, idle_metrics: Object.fromEntries(idle.matched),
           ok: counts.failures === 0 && idle.nonzero.length === 0 };
}

// Reads /metrics; returns the samples whose name matches --idle-metrics and those non-zero.
async function idle_metrics(o) {
  const text = await (await fetch(`${o.url}/metrics`)).text();
  const matched = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || !o.idle_metrics.test(m[1])) continue;
    matched.push([m[1] + (m[2] ?? ''), Number(m[3])]);
  }
  return { matched, nonzero: matched.filter(([, v]) => v !== 0) };
}

// The value of an unlabelled sample in /metrics, or null.
async function metric_value(o, name) {
  try {
    const text = await (await fetch(`${o.url}/metrics`)).text();
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

async function prefix_mode(o_in, words) {
  // Only the time to the first token matters here: keep the completions short.
  const o = { ...o_in, max_tokens: Math.min(o_in.max_tokens, 8) };
  const runs = [];
  for (let k = 0; k < o.requests_per_client; ++k) {
    // A fresh nonce first, so the system prompt cannot already be cached.
    const system = make_prompt(words, `Session ${Date.now()}-${k}. You are a player in a company of actors.`);
    const cold = await stream_request(o, { system, prompt: 'Who is the king?' });
    const warm = await stream_request(o, { system, prompt: 'Where is the queen?' });
    for (const r of [cold, warm]) if (r.error) throw new Error(`prefix request failed: ${r.error}`);
    runs.push({ cold_ttft_ms: ttft_ms(cold), warm_ttft_ms: ttft_ms(warm), prompt_tokens: warm.prompt_tokens,
                cold_cached: cold.cached_tokens, warm_cached: warm.cached_tokens });
  }
  const med = (key) => percentile(runs.map((r) => r[key]), 50);
  const res = { mode: 'prefix', runs, cold_ttft_ms: med('cold_ttft_ms'), warm_ttft_ms: med('warm_ttft_ms') };
  res.ratio = res.cold_ttft_ms / res.warm_ttft_ms;
  res.ok = runs.every((r) => r.warm_cached > 0);
  console.log(`\nprefix reuse: system prompt ~${runs[0].prompt_tokens} tokens (median of ${runs.length})`);
  print_table(['TTFT cold ms', 'TTFT warm ms', 'cold/warm', 'cached cold', 'cached warm'],
              [[fmt(res.cold_ttft_ms), fmt(res.warm_ttft_ms), fmt(res.ratio, 2), runs[0].cold_cached, runs[0].warm_cached]]);
  return res;
}

// ---- main ---------------------------------------------------------------------------------

async function main() {
  const o = parse_cli();
  if (!o.model) {
    const r = await fetch(`${o.url}/v1/models`);
    if (!r.ok) throw new Error(`GET /v1/models: HTTP ${r.status}`);
    o.model = (await r.json()).data[0].id;
  }
  const words = await calibrate_words(o, o.prompt_tokens);
  const result = o.prefix ? await prefix_mode(o, words)
               : o.duration_s !== null ? await soak_mode(o, words)
               : await throughput_mode(o, words);
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: { ...o, idle_metrics: String(o.idle_metrics) }, result }, null, 2));
  process.exit(result.ok ? 0 : 1);
}

main().catch((e) => { console.error(`load.mjs: ${e.message}`); process.exit(1); });
