/**
 * The inflate queue both WebSocket message readers share: compressed messages are inflated one
 * at a time with one window, plain ones keep their place behind them, compressed bytes waiting
 * are bounded, and a closed connection's queue is read to its end before it stops.
 */
import t from 'tap'
import { InflateQueue, type InflateJob } from '../../../src/websocket/inflate-queue.js'
import { deflateMessages } from '../../support/raw-websocket.js'

interface Job extends InflateJob {
  name: string
  text: string
}

function queueOf (maxQueuedBytes = 1024 * 1024): { queue: InflateQueue<Job>, done: string[], errors: number[], drained: () => Promise<void>, errored: Promise<void> } {
  const done: string[] = []
  const errors: number[] = []
  let onDone = (): void => {}
  let onError = (): void => {}
  const errored = new Promise<void>((resolve) => { onError = resolve })
  const queue: InflateQueue<Job> = new InflateQueue<Job>({
    deflate: { noContextTakeover: false },
    maxQueuedBytes,
    onData: (job, chunk) => { job.text += chunk.toString('utf8') },
    onDone: (job) => { done.push(`${job.name}:${job.compressed ? job.text : Buffer.concat(job.parts).toString('utf8')}`); onDone() },
    onError: () => { errors.push(1); queue.stop(); onError() }
  })
  const drained = async (): Promise<void> => { while (!queue.settled) await new Promise<void>((resolve) => { onDone = resolve }) }
  return { queue, done, errors, drained, errored }
}

const compressedJob = (name: string, payload: Buffer): Job => ({ name, text: '', compressed: true, parts: [payload.subarray(0, 3), payload.subarray(3)], bytes: payload.length })
const plainJob = (name: string, text: string): Job => ({ name, text: '', compressed: false, parts: [Buffer.from(text)], bytes: 0 })

t.test('compressed messages are inflated in order through one window; plain ones wait their turn behind them', async (t) => {
  const { queue, done, drained } = queueOf()
  const [a, b] = await deflateMessages(['{"n":"first"}', '{"n":"first"}'], true)
  const first = compressedJob('a', a!)
  queue.push(first)
  queue.push(plainJob('p', 'plain'))
  queue.push(compressedJob('b', b!))
  t.same(done, [], 'the plain message waits for the compressed one before it')
  t.same(first.parts, [], 'a job\'s compressed bytes are let go once the inflater has them')
  await drained()
  t.same(done, ['a:{"n":"first"}', 'p:plain', 'b:{"n":"first"}'], 'the second reads through the first one\'s window')
})

t.test('a plain message with nothing before it has its turn at once', async (t) => {
  const { queue, done } = queueOf()
  queue.push(plainJob('p', 'now'))
  t.same(done, ['p:now'])
  t.ok(queue.settled)
})

t.test('compressed bytes waiting are bounded; the one inflating does not count', async (t) => {
  const { queue, drained } = queueOf(10)
  t.ok(queue.fits(10))
  t.notOk(queue.fits(11))
  const [a, b] = await deflateMessages(['x'.repeat(100), 'y'.repeat(100)], true)
  queue.push(compressedJob('a', a!)) // taken by the inflater at once
  queue.push(compressedJob('b', b!))
  t.notOk(queue.fits(11 - b!.length), 'the waiting one counts')
  await drained()
  t.ok(queue.fits(10), 'nothing waits any more')
})

t.test('regression: plain messages waiting behind a compressed one count against the bound too', async (t) => {
  const { queue, done, drained } = queueOf(10)
  const [a] = await deflateMessages(['x'.repeat(100)], true)
  queue.push(compressedJob('a', a!)) // inflating: the plain one behind it waits
  queue.push({ ...plainJob('p', 'sixsix'), bytes: 6 })
  t.ok(queue.fits(4))
  t.notOk(queue.fits(5), 'the waiting plain message\'s bytes count')
  await drained()
  t.same(done, [`a:${'x'.repeat(100)}`, 'p:sixsix'])
  t.ok(queue.fits(10), 'nothing waits any more')
})

t.test('finish reads what is queued to the end, then stops; stop drops it', async (t) => {
  const [a, b] = await deflateMessages(['{"late":1}', '{"late":2}'], true)
  const finished = queueOf()
  finished.queue.push(compressedJob('a', a!))
  finished.queue.push(compressedJob('b', b!))
  finished.queue.finish()
  t.notOk(finished.queue.open, 'no new messages are taken')
  t.notOk(finished.queue.stopped, 'still reading what was queued')
  await finished.drained()
  t.same(finished.done, ['a:{"late":1}', 'b:{"late":2}'])
  t.ok(finished.queue.stopped, 'stopped once drained')

  const stopped = queueOf()
  stopped.queue.push(compressedJob('a', a!))
  stopped.queue.push(compressedJob('b', b!))
  stopped.queue.stop()
  await deflateMessages(['a round trip through the thread pool'], true)
  t.same(stopped.done, [], 'nothing handed on after stop')
  t.ok(stopped.queue.settled)
})

t.test('corrupt data reports an error once and hands nothing on', async (t) => {
  const { queue, done, errors, errored } = queueOf()
  queue.push(compressedJob('bad', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00])))
  queue.push(plainJob('p', 'after'))
  await errored
  t.same(errors, [1])
  t.same(done, [])
  t.ok(queue.stopped)
})
