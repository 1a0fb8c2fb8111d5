import t from 'tap'
import { loadConfig } from '../../../src/config/load-config.js'
import { createUpstreamAgent } from '../../../src/upstream/upstream-agent.js'

// Regression: the gateway loads undici's Agent alone, and undici's index is what gives a
// dispatcher its request() method; without it every active health probe failed and ejected
// healthy upstreams.
t.test('the upstream agent has request() and the other dispatcher methods', async (t) => {
  const agent = createUpstreamAgent(loadConfig({}).upstream)
  t.teardown(async () => { await agent.close() })
  for (const method of ['request', 'stream', 'pipeline', 'upgrade', 'connect', 'dispatch'] as const) t.type(agent[method], 'function', method)
})
