/**
 * A request the gateway refuses keeps its keep-alive connection when it has no body, and closes
 * it when its body has not all arrived (limits.test.ts holds the reasons for that). Regression:
 * every refusal closed the connection, bodiless GETs too, since Node marks a request complete
 * only after its handler returns.
 */
import tap from 'tap'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { headerOf, rawConnection, rawRequest } from '../support/raw-http.js'

tap.test('regression: refusing a request without a body keeps the connection; with one unread, closes it', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, { RATE_LIMIT_PER_MINUTE: '2' })
  const connection = rawConnection(gateway.port)
  t.teardown(() => { connection.destroy() })

  connection.write(rawRequest('GET /v1/models HTTP/1.1', 'Host: x', 'session-id: a b'))
  const badSession = await connection.nextResponse()
  t.equal(badSession.status, 400, 'an invalid session id is refused')
  t.not(headerOf(badSession, 'connection'), 'close', 'the 400 keeps the connection')

  connection.write(rawRequest('GET /v1/models HTTP/1.1', 'Host: x'))
  t.equal((await connection.nextResponse()).status, 200, 'the next request on it is served')

  connection.write(rawRequest('GET /v1/models HTTP/1.1', 'Host: x'))
  const limited = await connection.nextResponse()
  t.equal(limited.status, 429, 'past the rate limit')
  t.not(headerOf(limited, 'connection'), 'close', 'the 429 keeps the connection')

  connection.write(rawRequest('POST /v1/responses HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 2') + '{}')
  const limitedWithBody = await connection.nextResponse()
  t.equal(limitedWithBody.status, 429, 'a request with a body, past the rate limit')
  t.equal(headerOf(limitedWithBody, 'connection'), 'close', 'its body unread, the 429 closes the connection')
})
