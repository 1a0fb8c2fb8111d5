/**
 * Ids drawn from blocks of random bytes: W3C-shaped (lowercase hex, 32 or 16 digits), never
 * repeated across many blocks, and each block's digits used once.
 */
import { isValidSpanId, isValidTraceId } from '@opentelemetry/api'
import t from 'tap'
import { BlockIdGenerator } from '../../../src/observe/otel-ids.js'

t.test('trace and span ids, interleaved across many blocks: valid and all distinct', async (t) => {
  const ids = new BlockIdGenerator()
  const seen = new Set<string>()
  let invalid = 0
  // 20,000 ids of 16 or 32 digits: about 60 blocks of 8,192 digits.
  for (let i = 0; i < 20_000; i++) {
    const trace = i % 3 === 0
    const id = trace ? ids.generateTraceId() : ids.generateSpanId()
    if (!(trace ? isValidTraceId(id) : isValidSpanId(id)) || !/^[0-9a-f]+$/.test(id)) invalid++
    seen.add(id)
  }
  t.equal(invalid, 0, 'every id lowercase hex of its length, not all zeros')
  t.equal(seen.size, 20_000, 'no id repeated: no block, nor part of one, read twice')
})

t.test('two generators draw their own blocks', async (t) => {
  const a = new BlockIdGenerator()
  const b = new BlockIdGenerator()
  t.not(a.generateTraceId(), b.generateTraceId())
})
