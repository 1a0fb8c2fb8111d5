/**
 * The client side of a WebSocket, for the soak: its messages awaited one at a time, with
 * errors, failed handshakes and unexpected closes turned into rejections.
 */

/** The messages of a client WebSocket, awaited one at a time; errors and unexpected closes reject. */
export function messageInbox (ws) {
  const queue = []
  let waiter
  let failure
  let resolveClosed
  const closed = new Promise((resolve) => { resolveClosed = resolve })
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('unexpected-response', (req, res) => {
      const err = new Error(`handshake answered ${res.statusCode}`)
      err.code = `handshake-${res.statusCode}`
      reject(err)
      fail(err)
      res.resume()
    })
    ws.once('error', reject)
  })
  opened.catch(() => {})
  const fail = (err) => {
    failure ??= err
    waiter?.reject(failure)
    waiter = undefined
  }
  ws.on('message', (data) => {
    if (waiter !== undefined) {
      waiter.resolve(data)
      waiter = undefined
    } else {
      queue.push(data)
    }
  })
  ws.on('error', (err) => fail(err))
  ws.on('close', (code) => {
    resolveClosed({ code })
    const err = new Error(`closed with ${code} in the middle of a turn`)
    err.code = `closed-${code}`
    fail(err)
  })
  return {
    opened,
    closed,
    fail,
    next () {
      if (queue.length > 0) return Promise.resolve(queue.shift())
      if (failure !== undefined) return Promise.reject(failure)
      return new Promise((resolve, reject) => { waiter = { resolve, reject } })
    }
  }
}

