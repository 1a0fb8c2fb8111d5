/** ByteTail keeps exactly the last bytes of what passed, however it was cut into pieces. */
import t from 'tap'
import { ByteTail } from '../../../src/observe/byte-tail.js'
import { randomChunks } from '../../support/mock-upstream.js'

t.test('the last `size` bytes, for any pieces, added one by one or as a run', async (t) => {
  const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251))
  const wrong: string[] = []
  for (const size of [1, 7, 64, 4999, 5000, 6000]) {
    for (let seed = 1; seed <= 30; seed++) {
      const pieces = randomChunks(bytes, seed, 1 + (seed * 37) % 700)
      const expected = bytes.subarray(Math.max(0, bytes.length - size))
      const one = new ByteTail(size)
      for (const piece of pieces) one.add(piece)
      const run = new ByteTail(size)
      run.addLast(pieces.slice(0, 5))
      for (const piece of pieces.slice(5)) run.add(piece)
      if (!one.bytes().equals(expected)) wrong.push(`size ${size}, seed ${seed}: add`)
      if (!run.bytes().equals(expected)) wrong.push(`size ${size}, seed ${seed}: addLast, then add`)
    }
  }
  t.same(wrong, [])
})

t.test('pieces are copied: reusing their memory later changes nothing', async (t) => {
  const tail = new ByteTail(4)
  const piece = Buffer.from('abcdef')
  tail.add(piece)
  piece.fill(0x78)
  t.equal(tail.bytes().toString(), 'cdef')
})
