// End-to-end test of `frugal serve` with the official OpenAI Node client (npm `openai`).
//
//   node openai_client_test.mjs [FRUGAL_BIN [MODEL_DIR]]      (or env FRUGAL_BIN, FRUGAL_MODEL)
//
// Starts the server on a free port, runs every check below (a failed check does not stop the
// others, so one run reports every problem), SIGTERMs the server and requires exit code 0.
// Exit status: 0 when every check passed, 1 otherwise. FRUGAL_SERVE_VERBOSE=1 echoes the
// server's stderr; FRUGAL_TEST_ONLY=name1,name2 runs a subset.
//
// The model is models/tiny-v4 (Shakespeare-like text; it cannot follow instructions or emit tool
// calls), so checks test the protocol, not the quality of the answers.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { Server, resolve_paths } from './server.mjs';

const kModel = 'tiny-v4';

// ---- a tiny check harness -----------------------------------------------------------------

class CheckError extends Error {}
function expect(cond, msg) { if (!cond) throw new CheckError(msg); }
function expect_eq(actual, expected, what) {
  expect(actual === expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}
const is_int = (x) => Number.isInteger(x) && x >= 0;
const warnings = [];
const warn = (msg) => { warnings.push(msg); console.log(`    WARN ${msg}`); };

// Usage must be internally consistent: total = prompt + completion, all non-negative integers.
function check_usage(u, max_completion, what) {
  expect(u && typeof u === 'object', `${what}: usage missing`);
  expect(is_int(u.prompt_tokens) && u.prompt_tokens > 0, `${what}: usage.prompt_tokens = ${u.prompt_tokens}`);
  expect(is_int(u.completion_tokens), `${what}: usage.completion_tokens = ${u.completion_tokens}`);
  expect_eq(u.total_tokens, u.prompt_tokens + u.completion_tokens, `${what}: usage.total_tokens`);
  if (max_completion !== undefined) {
    expect(u.completion_tokens <= max_completion,
           `${what}: completion_tokens ${u.completion_tokens} > max_tokens ${max_completion}`);
  }
}

// Collects a chat stream: content, reasoning, roles, finish reasons and the usage chunk.
async function collect_chat_stream(stream) {
  const out = { chunks: [], content: '', reasoning: '', roles: [], finish: null, usage: null,
                usage_chunks: 0, first_delta: null, ids: new Set() };
  for await (const c of stream) {
    out.chunks.push(c);
    out.ids.add(c.id);
    expect_eq(c.object, 'chat.completion.chunk', 'chunk.object');
    if (c.usage) { out.usage = c.usage; out.usage_chunks += 1; }
    for (const ch of c.choices ?? []) {
      if (out.first_delta === null) out.first_delta = ch.delta;
      if (ch.delta?.role) out.roles.push(ch.delta.role);
      if (typeof ch.delta?.content === 'string') out.content += ch.delta.content;
      if (typeof ch.delta?.reasoning_content === 'string') out.reasoning += ch.delta.reasoning_content;
      if (ch.finish_reason) out.finish = ch.finish_reason;
    }
  }
  return out;
}

// ---- the checks -----------------------------------------------------------------------------

const kTools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather in a city.',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];

const user = (content) => [{ role: 'user', content }];

function make_checks(client, server, paths, tmp) {
  const checks = [];
  const check = (name, fn) => checks.push({ name, fn });

  check('health_metrics_root', async () => {
    const h = await fetch(`${server.base_url}/health`);
    expect_eq(h.status, 200, 'GET /health status');
    expect_eq((await h.json()).status, 'ok', 'GET /health .status');
    const m = await fetch(`${server.base_url}/metrics`);
    expect_eq(m.status, 200, 'GET /metrics status');
    const text = await m.text();
    // Prometheus text: every non-comment, non-empty line is `name{labels} value`.
    const bad = text.split('\n').filter((l) => l && !l.startsWith('#') &&
                                        !/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+$/.test(l));
    expect(text.trim().length > 0, 'GET /metrics: empty body');
    expect(bad.length === 0, `GET /metrics: lines not in Prometheus text format: ${JSON.stringify(bad.slice(0, 3))}`);
    const root = await fetch(`${server.base_url}/`);
    expect_eq(root.status, 200, 'GET / status');
    expect(/text\/html/.test(root.headers.get('content-type') ?? ''),
           `GET / content-type: ${root.headers.get('content-type')}`);
    expect((await root.text()).includes('id="messages"'), 'GET /: not the chat page (no id="messages")');
  });

  check('models_list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids.includes(kModel), `models.list: ${JSON.stringify(ids)} does not contain ${kModel}`);
    const one = await client.models.retrieve(kModel).catch((e) => e);
    if (one instanceof Error) warn(`GET /v1/models/${kModel} failed (${one.message}); optional`);
  });

  check('chat_nonstream', async () => {
    const r = await client.chat.completions.create({
      model: kModel, messages: user('Speak, good sir, of the king.'), max_tokens: 8, temperature: 0 });
    expect_eq(r.object, 'chat.completion', 'object');
    expect_eq(r.model, kModel, 'model');
    expect(typeof r.id === 'string' && r.id.length > 0, `id: ${r.id}`);
    expect_eq(r.choices.length, 1, 'choices.length');
    const c = r.choices[0];
    expect_eq(c.index, 0, 'choices[0].index');
    expect_eq(c.message.role, 'assistant', 'message.role');
    expect(typeof c.message.content === 'string' && c.message.content.length > 0,
           `message.content should be a non-empty string, got ${JSON.stringify(c.message.content)}`);
    check_usage(r.usage, 8, 'usage');
    expect_eq(c.finish_reason, 'length', 'finish_reason with max_tokens 8');
    expect_eq(r.usage.completion_tokens, 8, 'completion_tokens when finish_reason is length');
  });

  check('chat_stream_matches_nonstream', async () => {
    const req = { model: kModel, messages: user('What says the queen?'), max_tokens: 16,
                  temperature: 0, seed: 7 };
    const full = await client.chat.completions.create(req);
    const s = await collect_chat_stream(await client.chat.completions.create(
      { ...req, stream: true, stream_options: { include_usage: true } }));
    expect(s.first_delta && s.first_delta.role === 'assistant',
           `first delta should carry role "assistant", got ${JSON.stringify(s.first_delta)}`);
    expect_eq(s.content, full.choices[0].message.content, 'streamed content vs non-streamed content');
    expect_eq(s.finish, full.choices[0].finish_reason, 'streamed finish_reason');
    expect_eq(s.usage_chunks, 1, 'number of chunks carrying usage');
    const last = s.chunks[s.chunks.length - 1];
    expect(last.usage && Array.isArray(last.choices) && last.choices.length === 0,
           `the last chunk should be the usage chunk with choices [], got ${JSON.stringify(last)}`);
    check_usage(s.usage, 16, 'stream usage');
    expect_eq(s.usage.completion_tokens, full.usage.completion_tokens, 'stream completion_tokens');
    expect_eq(s.usage.prompt_tokens, full.usage.prompt_tokens, 'stream prompt_tokens');
    expect_eq(s.ids.size, 1, 'distinct chunk ids in one stream');
    // Without include_usage no chunk carries usage.
    const s2 = await collect_chat_stream(await client.chat.completions.create({ ...req, stream: true }));
    expect_eq(s2.usage_chunks, 0, 'usage chunks without stream_options.include_usage');
    expect_eq(s2.content, s.content, 'second stream content');
  });

  check('completions', async () => {
    const req = { model: kModel, prompt: 'ROMEO:\n', max_tokens: 12, temperature: 0 };
    const r = await client.completions.create(req);
    expect_eq(r.object, 'text_completion', 'object');
    expect_eq(r.choices.length, 1, 'choices.length');
    expect(typeof r.choices[0].text === 'string' && r.choices[0].text.length > 0,
           `text should be non-empty, got ${JSON.stringify(r.choices[0].text)}`);
    check_usage(r.usage, 12, 'usage');
    expect_eq(r.choices[0].finish_reason, 'length', 'finish_reason with max_tokens 12');
    let text = '', finish = null, usage = null;
    const stream = await client.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    for await (const c of stream) {
      expect_eq(c.object, 'text_completion', 'stream chunk.object');
      if (c.usage) usage = c.usage;
      for (const ch of c.choices ?? []) { text += ch.text ?? ''; if (ch.finish_reason) finish = ch.finish_reason; }
    }
    expect_eq(text, r.choices[0].text, 'streamed text vs non-streamed text');
    expect_eq(finish, 'length', 'streamed finish_reason');
    check_usage(usage, 12, 'stream usage');
    expect_eq(usage.completion_tokens, r.usage.completion_tokens, 'stream completion_tokens');
    // echo is optional: when accepted, the text must start with the prompt.
    const e = await client.completions.create({ ...req, echo: true }).catch((err) => err);
    if (e instanceof OpenAI.APIError) warn(`completions echo not supported (${e.status} ${e.message}); optional`);
    else if (e instanceof Error) throw e;
    else expect(e.choices[0].text.startsWith(req.prompt), `echo: text does not start with the prompt: ${JSON.stringify(e.choices[0].text)}`);
  });

  check('tools_request', async () => {
    const r = await client.chat.completions.create({
      model: kModel, messages: user('What is the weather in Verona?'), tools: kTools,
      tool_choice: 'auto', max_tokens: 16, temperature: 0 });
    const c = r.choices[0];
    expect(['stop', 'length', 'tool_calls'].includes(c.finish_reason), `finish_reason: ${c.finish_reason}`);
    check_usage(r.usage, 16, 'usage');
    if (c.finish_reason === 'tool_calls') {
      expect(Array.isArray(c.message.tool_calls) && c.message.tool_calls.length > 0, 'tool_calls missing');
      for (const tc of c.message.tool_calls) {
        expect(typeof tc.id === 'string' && tc.type === 'function', `tool call: ${JSON.stringify(tc)}`);
        JSON.parse(tc.function.arguments);
      }
    } else {
      expect(typeof c.message.content === 'string', `content: ${JSON.stringify(c.message.content)}`);
    }
  });

  check('tools_history_prompt_tokens', async () => {
    const messages = [
      { role: 'user', content: 'What is the weather in Verona?' },
      { role: 'assistant', content: '', tool_calls: [{
        id: 'call_1', type: 'function',
        function: { name: 'get_weather', arguments: '{"city": "Verona"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 18, "sky": "clear"}' },
    ];
    const r = await client.chat.completions.create({
      model: kModel, messages, tools: kTools, max_tokens: 8, temperature: 0 });
    check_usage(r.usage, 8, 'usage');
    // The CLI renders the same conversation; the server must see exactly that many tokens.
    const file = path.join(tmp, 'tools_history.json');
    writeFileSync(file, JSON.stringify({ messages, tools: kTools }));
    const ids = execFileSync(paths.bin, ['render', '-m', paths.model, '--messages', file, '--ids'],
                             { encoding: 'utf8' }).trim().split(/\s+/);
    expect_eq(r.usage.prompt_tokens, ids.length, 'usage.prompt_tokens vs `frugal render --ids` token count');
  });

  check('thinking_mode', async () => {
    const base = { model: kModel, messages: user('Who comes there?'), max_tokens: 20, temperature: 0 };
    const on = await client.chat.completions.create({ ...base, chat_template_kwargs: { thinking: true } });
    const rc = on.choices[0].message.reasoning_content;
    expect(typeof rc === 'string' && rc.length > 0,
           `thinking on: reasoning_content should be a non-empty string, got ${JSON.stringify(rc)}`);
    const eff = await client.chat.completions.create({ ...base, reasoning_effort: 'high' });
    const rc2 = eff.choices[0].message.reasoning_content;
    expect(typeof rc2 === 'string' && rc2.length > 0,
           `reasoning_effort high: reasoning_content should be a non-empty string, got ${JSON.stringify(rc2)}`);
    const off = await client.chat.completions.create(base);
    const rc3 = off.choices[0].message.reasoning_content;
    expect(rc3 === undefined || rc3 === null,
           `thinking off: reasoning_content should be absent, got ${JSON.stringify(rc3)}`);
    // Streaming thinking: the reasoning arrives in delta.reasoning_content, same text.
    const s = await collect_chat_stream(await client.chat.completions.create(
      { ...base, chat_template_kwargs: { thinking: true }, stream: true }));
    expect_eq(s.reasoning, rc, 'streamed reasoning_content vs non-streamed');
    expect_eq(s.content, on.choices[0].message.content ?? '', 'streamed content in thinking mode');
  });

  check('stop_sequence', async () => {
    const base = { model: kModel, messages: user('Tell me of Verona.'), max_tokens: 32, temperature: 0 };
    const text = (await client.chat.completions.create(base)).choices[0].message.content;
    const stop = pick_stop(text);
    expect(stop !== null, `no usable stop string in the temperature-0 text ${JSON.stringify(text)}`);
    const expected = text.slice(0, text.indexOf(stop));
    const r = await client.chat.completions.create({ ...base, stop: [stop] });
    expect_eq(r.choices[0].message.content, expected, `content with stop ${JSON.stringify(stop)}`);
    expect_eq(r.choices[0].finish_reason, 'stop', 'finish_reason with a matched stop string');
    // Streaming must hold back a partial match and never emit the stop string.
    const s = await collect_chat_stream(await client.chat.completions.create({ ...base, stop, stream: true }));
    expect_eq(s.content, expected, `streamed content with stop ${JSON.stringify(stop)}`);
    expect_eq(s.finish, 'stop', 'streamed finish_reason with a matched stop string');
  });

  check('seed_reproducible', async () => {
    const req = { model: kModel, messages: user('Good morrow, cousin.'), max_tokens: 24,
                  temperature: 0.8, seed: 42 };
    const a = await client.chat.completions.create(req);
    const b = await client.chat.completions.create(req);
    expect_eq(b.choices[0].message.content, a.choices[0].message.content, 'same seed, same request: content');
    const c = await client.chat.completions.create({ ...req, seed: 43 });
    if (c.choices[0].message.content === a.choices[0].message.content) {
      warn('seed 42 and seed 43 gave the same text at temperature 0.8 (possible, but suspicious)');
    }
  });

  check('logprobs', async () => {
    const r = await client.chat.completions.create({
      model: kModel, messages: user('Hark!'), max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
    const lp = r.choices[0].logprobs?.content;
    expect(Array.isArray(lp), `choices[0].logprobs.content should be a list, got ${JSON.stringify(r.choices[0].logprobs)}`);
    expect_eq(lp.length, r.usage.completion_tokens, 'logprobs.content length vs completion_tokens');
    for (const [i, t] of lp.entries()) {
      const where = `logprobs.content[${i}]`;
      expect(typeof t.token === 'string' && typeof t.logprob === 'number' && t.logprob <= 0, `${where}: ${JSON.stringify(t)}`);
      expect(Array.isArray(t.top_logprobs) && t.top_logprobs.length === 3, `${where}.top_logprobs should have 3 entries: ${JSON.stringify(t.top_logprobs)}`);
      for (let k = 1; k < 3; ++k) {
        expect(t.top_logprobs[k - 1].logprob >= t.top_logprobs[k].logprob, `${where}.top_logprobs not sorted`);
      }
      // Greedy decoding picks the most likely token.
      expect_eq(t.token, t.top_logprobs[0].token, `${where}: sampled token vs best top_logprob at temperature 0`);
      expect(Math.abs(t.logprob - t.top_logprobs[0].logprob) < 1e-4, `${where}: logprob ${t.logprob} vs top ${t.top_logprobs[0].logprob}`);
    }
    expect_eq(lp.map((t) => t.token).join(''), r.choices[0].message.content, 'joined logprob tokens vs content');
  });

  check('n_choices', async () => {
    const r = await client.chat.completions.create({
      model: kModel, messages: user('Speak!'), max_tokens: 8, temperature: 0.8, seed: 5, n: 2 });
    expect_eq(r.choices.length, 2, 'choices.length with n=2');
    expect_eq(JSON.stringify(r.choices.map((c) => c.index).sort()), '[0,1]', 'choice indices');
    for (const c of r.choices) expect(typeof c.message.content === 'string', `choice ${c.index}: content`);
    check_usage(r.usage, 16, 'usage with n=2');
    if (r.choices[0].message.content === r.choices[1].message.content) {
      warn('n=2 at temperature 0.8 gave two identical choices (possible, but suspicious)');
    }
  });

  check('errors', async () => {
    const e1 = await client.chat.completions.create({ model: 'no-such-model', messages: user('Hi') }).catch((e) => e);
    expect(e1 instanceof OpenAI.NotFoundError, `wrong model: expected NotFoundError, got ${e1?.constructor?.name}: ${e1?.message}`);
    expect_eq(e1.status, 404, 'wrong model: status');
    expect(typeof e1.error?.message === 'string' && e1.error.message.length > 0, `wrong model: error.message: ${JSON.stringify(e1.error)}`);
    const e2 = await client.chat.completions.create({ model: kModel, messages: user('Hi'), temperature: 5 }).catch((e) => e);
    expect(e2 instanceof OpenAI.BadRequestError, `temperature 5: expected BadRequestError, got ${e2?.constructor?.name}: ${e2?.message}`);
    expect_eq(e2.status, 400, 'temperature 5: status');
    expect_eq(e2.param, 'temperature', 'temperature 5: error.param');
    expect(typeof e2.type === 'string', `temperature 5: error.type: ${JSON.stringify(e2.error)}`);
    // A body that is not JSON: a 400 with an OpenAI error object, checked without the client.
    const r = await fetch(`${server.base_url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' });
    expect_eq(r.status, 400, 'invalid JSON body: status');
    const body = await r.json();
    expect(body.error && typeof body.error.message === 'string' && 'type' in body.error &&
           'param' in body.error && 'code' in body.error,
           `invalid JSON body: expected {"error":{message,type,param,code}}, got ${JSON.stringify(body)}`);
  });

  check('prefix_reuse_cached_tokens', async () => {
    const system = long_system_prompt();
    const ask = (q) => client.chat.completions.create({
      model: kModel, max_tokens: 4, temperature: 0,
      messages: [{ role: 'system', content: system }, { role: 'user', content: q }] });
    const cold = await ask('Who is the king?');
    const warm = await ask('Where is the queen?');
    const cold_cached = cold.usage.prompt_tokens_details?.cached_tokens;
    const warm_cached = warm.usage.prompt_tokens_details?.cached_tokens;
    expect(is_int(cold_cached), `cold: usage.prompt_tokens_details.cached_tokens: ${JSON.stringify(cold.usage)}`);
    expect(is_int(warm_cached) && warm_cached > 0,
           `warm: cached_tokens should be > 0, got ${JSON.stringify(warm.usage)}`);
    expect(warm_cached < warm.usage.prompt_tokens, `warm: cached_tokens ${warm_cached} >= prompt_tokens ${warm.usage.prompt_tokens}`);
    console.log(`    prompt ${warm.usage.prompt_tokens} tokens, cached cold ${cold_cached}, warm ${warm_cached}`);
  });

  check('concurrent_requests', async () => {
    // --parallel 4: four requests at once all succeed. Equal text to a serial run at
    // temperature 0 is expected but only warned about (batched kernels may round differently).
    const req = (i) => ({ model: kModel, messages: user(`Speak of thy ${['father', 'mother', 'sword', 'horse'][i]}.`),
                          max_tokens: 16, temperature: 0 });
    const serial = [];
    for (let i = 0; i < 4; ++i) serial.push((await client.chat.completions.create(req(i))).choices[0].message.content);
    const par = await Promise.all([0, 1, 2, 3].map((i) => client.chat.completions.create(req(i))));
    for (let i = 0; i < 4; ++i) {
      expect(typeof par[i].choices[0].message.content === 'string', `concurrent ${i}: content`);
      check_usage(par[i].usage, 16, `concurrent ${i}`);
      if (par[i].choices[0].message.content !== serial[i]) {
        warn(`concurrent request ${i} differs from its serial run at temperature 0: ` +
             `${JSON.stringify(par[i].choices[0].message.content)} vs ${JSON.stringify(serial[i])}`);
      }
    }
  });

  return checks;
}

// A stop string that first occurs strictly inside `text` (so the cut text is non-empty):
// a 4-character, non-blank slice from the middle, moved right until one qualifies.
function pick_stop(text) {
  if (typeof text !== 'string') return null;
  for (let k = Math.floor(text.length / 2); k + 4 <= text.length; ++k) {
    const s = text.slice(k, k + 4);
    if (s.trim().length === 4 && text.indexOf(s) > 0) return s;
  }
  return null;
}

// ~1,500 tokens of text (the tokenizer is small) repeated from a fixed passage.
function long_system_prompt() {
  const passage = 'You are a player in a company of actors. Speak in verse as the old plays do, ' +
    'of kings and queens, of Verona and of Rome, of love and war and the turning of the year. ';
  return Array.from({ length: 24 }, (_, i) => `Rule ${i + 1}. ${passage}`).join('\n');
}

// ---- main -------------------------------------------------------------------------------------

async function main() {
  const paths = resolve_paths();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'frugal-openai-test-'));
  const server = new Server({ ...paths, parallel: 4 });
  const failures = [];
  try {
    await server.start();
    console.log(`server ready at ${server.base_url}`);
    const client = new OpenAI({ baseURL: `${server.base_url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 120_000 });
    const only = process.env.FRUGAL_TEST_ONLY?.split(',');
    for (const { name, fn } of make_checks(client, server, paths, tmp)) {
      if (only && !only.includes(name)) continue;
      const t0 = Date.now();
      try {
        await fn();
        console.log(`PASS ${name} (${Date.now() - t0} ms)`);
      } catch (e) {
        const msg = e instanceof CheckError ? e.message : `${e.constructor?.name}: ${e.message}`;
        failures.push(`${name}: ${msg}`);
        console.log(`FAIL ${name}: ${msg}`);
      }
      if (server.exit) { failures.push(`server died during ${name}: ${JSON.stringify(server.exit)}`); break; }
    }
    if (server.listen_lines !== 1) failures.push(`server printed ${server.listen_lines} "listening on" lines, expected exactly 1`);
    const e = await server.stop();
    if (e.code !== 0) failures.push(`SIGTERM: server should exit 0, got ${JSON.stringify(e)}`);
    else console.log('PASS sigterm_exit_0');
  } catch (e) {
    failures.push(`setup: ${e.message}`);
  } finally {
    server.kill();
    rmSync(tmp, { recursive: true, force: true });
  }
  for (const w of warnings) console.log(`WARN ${w}`);
  if (failures.length) {
    console.log(`\n${failures.length} check(s) FAILED:\n  ${failures.join('\n  ')}`);
    console.log(server.tail());
    process.exit(1);
  }
  console.log('\nall checks passed');
}

await main();
