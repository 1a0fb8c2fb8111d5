/**
 * The request bodies bench:cache pushes through the prefix tap: a small call, codex-shaped
 * calls (many input items, `tools` after `input`), 5 MiB histories of prose or of escaped
 * quotes, and Chat Completions calls (names starting `chat`: a system and a developer message,
 * then the conversation). Deterministic, so runs compare.
 */
const MiB = 1024 * 1024

/** A codex-like tool: a JSON schema with descriptions. */
function tool (i) {
  return {
    type: 'function',
    name: `tool_${i}`,
    description: `Runs step ${i}. Use it when the "plan" says so; never for C:\\paths.`.repeat(4),
    strict: false,
    parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } }, workdir: { type: 'string', description: 'where' }, timeout_ms: { type: 'number' } }, required: ['command'] }
  }
}

const SOURCE = 'export function parse (text: string): Item[] {\n  const lines = text.split("\\n")\n  return lines.map((l) => ({ raw: l, "kind": l.startsWith("#") ? \'heading\' : \'line\' }))\n}\n'

/** One turn of a coding agent: a reasoning item, a shell call (JSON in JSON) and its output. */
function turn (n) {
  const args = JSON.stringify({ command: ['bash', '-lc', `sed -n ${n},${n + 80}p src/file_${n}.ts | grep -n "TODO\\|FIXME"`], workdir: '/work/repo', timeout_ms: 10000 })
  return [
    { type: 'reasoning', summary: [], encrypted_content: Buffer.from(`reasoning ${n} `.repeat(60)).toString('base64') },
    { type: 'function_call', name: 'shell', arguments: args, call_id: `call_${n}` },
    { type: 'function_call_output', call_id: `call_${n}`, output: JSON.stringify({ output: SOURCE.repeat(4), metadata: { exit_code: 0, duration_seconds: 0.1 } }) },
    { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: `Step ${n}: read the file; it "parses" lines.` }] }
  ]
}

/** A codex request of about `bytes` bytes: the field order codex 0.169 sends, `tools` after `input`. */
export function codexBody (bytes) {
  const input = [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Fix the "parse" bug in src/, then run the tests.' }] }]
  const body = { model: 'gpt-5', instructions: 'You are a coding agent.\n- Be "terse".\n'.repeat(200), input, tools: Array.from({ length: 12 }, (_, i) => tool(i)), tool_choice: 'auto', parallel_tool_calls: false, reasoning: { effort: 'medium', summary: 'auto' }, store: false, stream: true, include: ['reasoning.encrypted_content'], prompt_cache_key: '019a0000-0000-7000-8000-000000000000' }
  let size = JSON.stringify(body).length
  for (let n = 0; size < bytes; n++) {
    const items = turn(n)
    input.push(...items)
    size += JSON.stringify(items).length - 1
  }
  return Buffer.from(JSON.stringify(body))
}

/** A 5 MiB agent history whose items repeat `text`, with the three fields first. */
function history (text) {
  const items = []
  let size = 0
  while (size < 5 * MiB) {
    const item = { role: 'user', content: `line ${items.length}: ${text}` }
    items.push(item)
    size += JSON.stringify(item).length
  }
  return Buffer.from(JSON.stringify({ model: 'gpt-5', instructions: 'Be terse. '.repeat(500), tools: Array.from({ length: 30 }, (_, i) => tool(i)), input: items, stream: false }))
}

/**
 * A Chat Completions call of about `bytes` bytes: a system and a developer message (the
 * prefix), then user and assistant turns with code and quotes, `tools` after `messages`.
 */
export function chatBody (bytes) {
  const messages = [
    { role: 'system', content: 'You are a careful coding assistant.\n- Quote "exact" names.\n'.repeat(100) },
    { role: 'developer', content: 'Answer in English; show diffs as ```diff blocks.' },
    { role: 'user', content: 'Fix the "parse" bug in src/, then explain it.' }
  ]
  const body = { model: 'gpt-5', messages, tools: Array.from({ length: 6 }, (_, i) => ({ type: 'function', function: { name: `tool_${i}`, description: tool(i).description, parameters: tool(i).parameters } })), stream: true, stream_options: { include_usage: true } }
  let size = JSON.stringify(body).length
  for (let n = 0; size < bytes; n++) {
    const pair = [{ role: 'assistant', content: `Step ${n}: the "parse" function:\n${SOURCE.repeat(3)}` }, { role: 'user', content: `Now line ${n}; what does \`l.startsWith("#")\` do?` }]
    messages.push(...pair)
    size += JSON.stringify(pair).length - 1
  }
  return Buffer.from(JSON.stringify(body))
}

/** The bodies, by name. */
export function benchBodies () {
  return {
    small: Buffer.from(JSON.stringify({ model: 'gpt-5', instructions: 'Be terse.', input: [{ role: 'user', content: 'Say something short.' }], tools: [tool(0)], stream: true })),
    'codex 100 kB': codexBody(100_000),
    'codex 500 kB': codexBody(500_000),
    // One quoted word per ~400 bytes.
    '5 MiB prose': history('The quick brown fox jumps over the lazy dog and keeps on running past the river bank. '.repeat(5) + '"fox" '),
    // An escaped quote every 12 bytes (JSON or code pasted into messages).
    '5 MiB quote-heavy': history('lorem ipsum "quoted" \\ '.repeat(40)),
    // A 5 MiB codex history: JSON in JSON, code, base64.
    '5 MiB codex': codexBody(5 * MiB),
    'chat 10 kB': chatBody(0),
    'chat 100 kB': chatBody(100_000),
    'chat 5 MiB': chatBody(5 * MiB)
  }
}
