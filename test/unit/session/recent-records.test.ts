/**
 * A session's recent call records as a ring: the same answers as the newest-first array it
 * replaced (unshift, pop past the capacity, pop to give up the oldest), for any sequence.
 */
import t from 'tap'
import { RecentRecords } from '../../../src/session/recent-records.js'

/** The array the store used to keep: newest first. */
class Reference {
  items: number[] = []
  constructor (readonly capacity: number) {}
  add (n: number): number | undefined {
    this.items.unshift(n)
    return this.items.length > this.capacity ? this.items.pop() : undefined
  }
}

const isMultipleOfSeven = (n: number): boolean => n % 7 === 0

t.test('a random mix of adds and drops of the oldest matches the newest-first array', async (t) => {
  let seed = 7
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  for (const capacity of [1, 2, 3, 5, 100]) {
    const ring = new RecentRecords<number>(capacity)
    const reference = new Reference(capacity)
    let mismatches = 0
    for (let step = 0; step < 2_000; step++) {
      if (random() < 0.1) {
        if (ring.removeOldest() !== reference.items.pop()) mismatches++
      } else if (ring.add(step) !== reference.add(step)) {
        mismatches++
      }
      if (ring.newest() !== reference.items[0] || ring.length !== reference.items.length) mismatches++
      // The record a miss is judged against: the newest that passes a test, looking back past others.
      if (ring.newestWhere(isMultipleOfSeven) !== reference.items.find(isMultipleOfSeven)) mismatches++
      if (step % 97 === 0 && JSON.stringify(ring.newestFirst()) !== JSON.stringify(reference.items)) mismatches++
    }
    t.same(ring.newestFirst(), reference.items, `capacity ${capacity}: the same records in the same order`)
    t.equal(mismatches, 0, `capacity ${capacity}: every step answered as the array did`)
  }
})

t.test('full, a new record replaces the oldest and hands it back', async (t) => {
  const ring = new RecentRecords<string>(3)
  t.equal(ring.newest(), undefined)
  for (const name of ['a', 'b', 'c']) t.equal(ring.add(name), undefined)
  t.equal(ring.add('d'), 'a')
  t.equal(ring.add('e'), 'b')
  t.same(ring.newestFirst(), ['e', 'd', 'c'])
  t.equal(ring.removeOldest(), 'c')
  t.same(ring.newestFirst(), ['e', 'd'])
  t.equal(ring.add('f'), undefined, 'room again after a drop')
  t.same(ring.newestFirst(), ['f', 'e', 'd'])
})

t.test('a capacity of 0 keeps nothing', async (t) => {
  const ring = new RecentRecords<string>(0)
  t.equal(ring.add('a'), 'a')
  t.equal(ring.length, 0)
  t.same(ring.newestFirst(), [])
})
