/**
 * The last `size` bytes of the pieces that pass, for what sits at the end of something too long
 * to keep whole (a final event's or a JSON answer's usage). Pieces are copied (their memory is
 * the relay's), and only those the last bytes lie in are kept.
 */
export class ByteTail {
  readonly #pieces: Buffer[] = []
  #length = 0

  constructor (readonly size: number) {}

  add (piece: Buffer): void {
    if (piece.length === 0) return
    const part = piece.length > this.size ? piece.subarray(piece.length - this.size) : piece
    this.#pieces.push(Buffer.from(part))
    this.#length += part.length
    while (this.#length - this.#pieces[0]!.length >= this.size) this.#length -= this.#pieces.shift()!.length
  }

  /** Adds the pieces of a run, from the first one its last `size` bytes lie in (earlier ones are not copied). */
  addLast (pieces: readonly Buffer[]): void {
    let first = pieces.length
    for (let needed = this.size; first > 0 && needed > 0;) needed -= pieces[--first]!.length
    for (let i = first; i < pieces.length; i++) this.add(pieces[i]!)
  }

  /** The last `size` bytes (all of them when fewer passed). */
  bytes (): Buffer {
    const all = Buffer.concat(this.#pieces, this.#length)
    return all.length > this.size ? all.subarray(all.length - this.size) : all
  }
}
