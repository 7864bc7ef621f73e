// A runner's LLM calls through dynretry proxy, made with the official Node
// SDKs (openai, @anthropic-ai/sdk), their own retries left on as a runner
// would leave them. The Go tests in test/proxy_test.go run it.
//
//   node client.mjs SDK CALLS [CONCURRENCY]
//
// SDK is openai, openai-stream, anthropic or anthropic-stream, optionally
// followed by +call-id: each call then sends an X-Autopack-Call-Id of its
// own, which the SDK repeats on its retries. CALLS calls are made,
// CONCURRENCY at a time (default: all at once). The environment gives
// PROXY_URL (the proxy's base URL), API_KEY and RUN_ID (sent as
// X-Autopack-Run-Id). It prints one JSON object per call on standard
// output:
//
//   {"ok", "status", "text", "cohort", "class", "attempts", "reason",
//    "shouldRetry", "events", "error"}
//
// text is the reply (a stream's deltas joined), events the number of
// stream events read, and the other fields are the response's headers
// (X-Dynretry-*, X-Should-Retry) or the SDK's error.
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const [sdkArg, calls, concurrency = calls] = process.argv.slice(2);
const [sdk, flag] = sdkArg.split('+');
// The request options of one call.
const options = () => (flag === 'call-id' ? { headers: { 'X-Autopack-Call-Id': randomUUID() } } : {});
const { PROXY_URL, API_KEY, RUN_ID } = process.env;
const defaultHeaders = { 'X-Autopack-Run-Id': RUN_ID, 'X-Autopack-Phase-Id': 'phase-1', 'X-Autopack-Role': 'builder' };

function headersOf(h) {
  return {
    cohort: h?.get('x-dynretry-cohort') ?? null,
    class: h?.get('x-dynretry-class') ?? null,
    attempts: h?.get('x-dynretry-attempts') ?? null,
    reason: h?.get('x-dynretry-reason') ?? null,
    shouldRetry: h?.get('x-should-retry') ?? null,
  };
}

const openai = new OpenAI({ baseURL: `${PROXY_URL}/openai/v1`, apiKey: API_KEY, defaultHeaders });
const anthropic = new Anthropic({ baseURL: `${PROXY_URL}/anthropic`, apiKey: API_KEY, defaultHeaders });
const messages = [{ role: 'user', content: 'Write the parser and its tests.' }];

async function call() {
  switch (sdk) {
    case 'openai': {
      const { data, response } = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', max_tokens: 20, messages }, options())
        .withResponse();
      return { status: response.status, text: data.choices[0].message.content, events: 0, ...headersOf(response.headers) };
    }
    case 'openai-stream': {
      const { data: stream, response } = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', max_tokens: 20, messages, stream: true }, options())
        .withResponse();
      let text = '', events = 0;
      for await (const chunk of stream) {
        events++;
        text += chunk.choices[0]?.delta?.content ?? '';
      }
      return { status: response.status, text, events, ...headersOf(response.headers) };
    }
    case 'anthropic': {
      const { data, response } = await anthropic.messages
        .create({ model: 'claude-sonnet-4-6', max_tokens: 20, messages }, options())
        .withResponse();
      return { status: response.status, text: data.content[0].text, events: 0, ...headersOf(response.headers) };
    }
    case 'anthropic-stream': {
      const { data: stream, response } = await anthropic.messages
        .create({ model: 'claude-sonnet-4-6', max_tokens: 20, messages, stream: true }, options())
        .withResponse();
      let text = '', events = 0;
      for await (const event of stream) {
        events++;
        if (event.type === 'content_block_delta') text += event.delta.text ?? '';
      }
      return { status: response.status, text, events, ...headersOf(response.headers) };
    }
  }
  throw new Error(`unknown SDK ${sdkArg}`);
}

async function attempt() {
  try {
    return { ok: true, ...(await call()) };
  } catch (err) {
    return { ok: false, status: err.status ?? 0, error: `${err.constructor.name}: ${err.message}`, ...headersOf(err.headers) };
  }
}

// Workers take the calls one after another.
let left = Number(calls);
const results = [];
await Promise.all(
  Array.from({ length: Math.min(Number(concurrency), left) }, async () => {
    while (left > 0) {
      left--;
      results.push(await attempt());
    }
  }),
);
for (const r of results) console.log(JSON.stringify(r));
