/**
 * Streamed Chat Completions answers as the API writes them: `data:` lines without `event:`
 * lines, one `chat.completion.chunk` each, `data: [DONE]` last; with `include_usage`, every
 * chunk says `"usage":null` and one more chunk, with no choices, carries the usage.
 */
export interface ChatStreamOptions {
  /** The usage-only chunk's usage (`stream_options.include_usage`); none without it. */
  usage?: Record<string, unknown>
  model?: string
}

export function chatUsage (): Record<string, unknown> {
  return {
    prompt_tokens: 1500,
    completion_tokens: 12,
    total_tokens: 1512,
    prompt_tokens_details: { cached_tokens: 1280, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 4, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 }
  }
}

/** One chunk's `data:` event. */
export function chatChunk (fields: Record<string, unknown>): string {
  return `data: ${JSON.stringify(fields)}\n\n`
}

/** A complete streamed chat completion answering `text` in a few deltas. */
export function chatCompletionStream (id: string, text: string, { usage, model = 'gpt-test-2026-01-01' }: ChatStreamOptions = {}): string {
  const head = { id, object: 'chat.completion.chunk', created: 1764000000, model, service_tier: 'default', system_fingerprint: 'fp_test' }
  // With include_usage every chunk has `"usage":null`; without it the key is absent.
  const nullUsage = usage === undefined ? {} : { usage: null }
  const choice = (delta: Record<string, unknown>, finish: string | null): Record<string, unknown> => ({ index: 0, delta, logprobs: null, finish_reason: finish })
  const words = text.split(/(?<= )/)
  return [
    chatChunk({ ...head, choices: [choice({ role: 'assistant', content: '', refusal: null }, null)], ...nullUsage }),
    ...words.map((word) => chatChunk({ ...head, choices: [choice({ content: word }, null)], ...nullUsage })),
    chatChunk({ ...head, choices: [choice({}, 'stop')], ...nullUsage }),
    ...(usage === undefined ? [] : [chatChunk({ ...head, choices: [], usage })]),
    'data: [DONE]\n\n'
  ].join('')
}

