/**
 * The tracing contender's collector: `node otlp-sink.mjs PORT` (0: any free port, printed as
 * `listening on http://127.0.0.1:PORT`). Accepts OTLP/HTTP exports on
 * any path and answers 200 with an empty (valid) ExportTraceServiceResponse, doing nothing
 * else, so the gateway's exporting cost is measured and not a collector's. On SIGTERM it
 * prints how many exports and bytes it took, for the run's logs.
 */
import { createServer } from 'node:http'

const port = Number(process.argv[2])
let exports = 0
let bytes = 0

const server = createServer((req, res) => {
  req.on('data', (chunk) => { bytes += chunk.length })
  req.on('end', () => {
    exports++
    res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 })
    res.end()
  })
})
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`))
process.on('SIGTERM', () => {
  process.stdout.write(`otlp-sink: ${exports} exports, ${bytes} bytes\n`)
  process.exit(0)
})
