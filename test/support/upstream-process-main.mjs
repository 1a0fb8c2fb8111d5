/**
 * A mock OpenAI-style upstream run as its own process (`node upstream-process-main.mjs PORT
 * NAME`, PORT 0 for any), so tests can kill it for real (SIGKILL) and start it again on the same
 * port. It reports the port it listens on (`ready`) and every request to its parent over IPC,
 * and answers by the mode the parent set: `ok`, or `{ status, retryAfter }` (e.g. 503, or 429
 * with retry-after). A POST whose JSON body holds `"hold":true` gets an SSE stream that starts
 * and never ends; `"stream":true` a short one (created, three deltas a turn of the event loop
 * apart, completed); `"stall_on":NAME` is read and never answered by the upstream called NAME
 * (answered as usual by the others). `POST /v1/conversations` creates a conversation (its JSON
 * names it `conv_NAME_N`).
 * WebSocket handshakes get a 101 naming the upstream, or in a refusing mode that status, as a
 * plain HTTP answer.
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'

const [port, name] = [Number(process.argv[2]), process.argv[3]]
let mode = { status: 200 }
let served = 0

// A test process that dies without its teardown must not leave this one holding its stdio.
process.on('disconnect', () => process.exit(0))

process.on('message', (message) => {
  if (message.mode !== undefined) mode = message.mode
  process.send({ ack: message.seq })
})

const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8')
    process.send({ request: { upstream: name, method: req.method, url: req.url, headers: req.headers, body } })
    if (mode.status !== 200) {
      res.writeHead(mode.status, refusalHeaders()).end(refusalBody())
      return
    }
    const id = `resp_${name.replace(/-/g, '_')}_${++served}`
    const fields = jsonFields(body)
    if (fields.stall_on === name) return // read, never answered: until the process dies
    if (fields.hold === true || fields.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-upstream': name })
      res.write(sseEvent({ type: 'response.created', response: { id } }))
      if (fields.hold !== true) streamRest(res, id, 3)
      return // a held stream: until the process dies
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name })
    if (req.method === 'POST' && req.url === '/v1/conversations') {
      res.end(JSON.stringify({ id: `conv_${name.replace(/-/g, '_')}_${served}`, object: 'conversation', upstream: name }))
      return
    }
    res.end(JSON.stringify({ id, object: 'response', upstream: name, usage: { input_tokens: 10, output_tokens: 2 } }))
  })
})

function jsonFields (body) {
  try {
    const value = JSON.parse(body)
    return value !== null && typeof value === 'object' ? value : {}
  } catch {
    return {}
  }
}

function sseEvent (data) {
  return `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`
}

/** `deltas` text deltas, each a turn of the event loop after the last, then response.completed. */
function streamRest (res, id, deltas) {
  if (res.destroyed) return
  if (deltas === 0) {
    res.end(sseEvent({ type: 'response.completed', response: { id, usage: { input_tokens: 10, output_tokens: 3 } } }))
    return
  }
  res.write(sseEvent({ type: 'response.output_text.delta', delta: 'x' }))
  setImmediate(() => streamRest(res, id, deltas - 1))
}

function refusalHeaders () {
  return { 'content-type': 'application/json', ...(mode.retryAfter === undefined ? {} : { 'retry-after': String(mode.retryAfter) }) }
}

function refusalBody () {
  return JSON.stringify({ error: { message: `${name} says ${mode.status}`, type: 'server_error' } })
}

server.on('upgrade', (req, socket) => {
  process.send({ request: { upstream: name, method: req.method, url: req.url, headers: req.headers, body: '' } })
  if (mode.status !== 200) {
    const body = refusalBody()
    const head = Object.entries({ ...refusalHeaders(), 'content-length': String(Buffer.byteLength(body)), 'x-upstream': name }).map(([k, v]) => `${k}: ${v}\r\n`).join('')
    socket.end(`HTTP/1.1 ${mode.status} Refused\r\n${head}\r\n${body}`)
    return
  }
  socket.on('end', () => socket.end()) // a closed tunnel closes at once, as a real server's would
  const accept = createHash('sha1').update(String(req.headers['sec-websocket-key']) + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nx-upstream: ${name}\r\n\r\n`)
})
server.listen(port, '127.0.0.1', () => process.send({ ready: server.address().port }))
