/**
 * nginx configurations for the benchmark: the static upstream (the fixed short stream for any
 * request) and the reverse-proxy anchor. Both run one worker, like one Node process, with
 * their temp files, pid and logs kept in the run's scratch directory. The upstream gets a long
 * accept queue so it never limits a burst of new connections; the proxy keeps the default
 * (511), as every proxy here does, session-gateway included.
 */

/** The string as an nginx single-quoted literal; refuses bytes nginx would read as syntax. */
function nginxQuoted (text) {
  if (/['\\$]/.test(text)) throw new Error('the static body must not hold quotes, backslashes or $')
  return `'${text.replaceAll('\n', '\\n')}'`
}

function common (dir, workerConnections, fileLimit) {
  return `worker_processes 1;
worker_rlimit_nofile ${fileLimit};
pid ${dir}/nginx-$name.pid;
error_log ${dir}/nginx-$name-error.log warn;
events { worker_connections ${workerConnections}; multi_accept on; }
`
    .replaceAll('$name', '%NAME%')
}

function temps (dir, name) {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((kind) => `  ${kind}_temp_path ${dir}/nginx-${name}-${kind};`).join('\n')
}

/** What both configs' http blocks share: no access log, private temp paths, long keep-alive, no body limit. */
function httpSettings (dir, name) {
  return `  access_log off;
${temps(dir, name)}
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_max_body_size 0;`
}

/** Answers every request, whatever its method, with the fixed stream (after discarding the body). */
export function staticUpstreamConfig ({ dir, port, body, workerConnections, fileLimit }) {
  const name = 'upstream'
  return common(dir, workerConnections, fileLimit).replaceAll('%NAME%', name) + `http {
${httpSettings(dir, name)}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      default_type text/event-stream;
      return 200 ${nginxQuoted(body.toString('latin1'))};
    }
  }
}
`
}

/**
 * nginx as the reverse-proxy anchor: streams both ways (no request or response buffering),
 * keeps upstream connections alive over HTTP/1.1, adds the same two fixed headers as the
 * Node anchors, and does no access logging (neither do they).
 */
export function reverseProxyConfig ({ dir, port, upstreamPort, sessionId, workerConnections, fileLimit }) {
  const name = 'proxy'
  return common(dir, workerConnections, fileLimit).replaceAll('%NAME%', name) + `http {
${httpSettings(dir, name)}
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 1024;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header session_id "${sessionId}";
      proxy_set_header session-id "${sessionId}";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 600s;
      proxy_send_timeout 600s;
    }
  }
}
`
}
