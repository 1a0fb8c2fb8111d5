/**
 * The OTLP exporter's TLS files: the collector's CA (OTEL_EXPORTER_OTLP_CERTIFICATE) and a
 * client certificate with its key (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, _CLIENT_KEY), each
 * with its `_TRACES_` form first. Read and checked here, at start: the exporter would otherwise
 * read them itself and, on a missing or bad file, carry on without it and fail every export.
 */
import { readCertificate, readPrivateKey } from './pem-files.js'
import { ConfigError } from './settings.js'

/** PEM bytes as read at start; the key is a secret (never logged). Empty for an http:// endpoint. */
export interface OtlpTls {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
}

/** Every variable read here, traces-specific first. */
export const OTLP_TLS_ENV_NAMES = [
  'OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CERTIFICATE',
  'OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE',
  'OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY', 'OTEL_EXPORTER_OTLP_CLIENT_KEY'
] as const

/** The name of the variable that is set, `_TRACES_` first, and its value. */
type Chosen = [name: string, value: string] | undefined

/**
 * The TLS files for `endpoint`. Over http:// they would not be used, so they are not read: a
 * fleet-wide certificate meant for another signal's https collector stops nothing.
 */
export function otlpTlsFromEnv (endpoint: string, choose: (suffix: string) => Chosen): OtlpTls {
  if (new URL(endpoint).protocol !== 'https:') return {}
  const ca = choose('CERTIFICATE')
  const cert = choose('CLIENT_CERTIFICATE')
  const key = choose('CLIENT_KEY')
  if ((cert === undefined) !== (key === undefined)) {
    const [missing, present] = cert === undefined ? ['CLIENT_CERTIFICATE', key![0]] : ['CLIENT_KEY', cert[0]]
    throw new ConfigError(present, `a client certificate needs both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY (or their _TRACES_ forms): OTEL_EXPORTER_OTLP_${missing} is not set`)
  }
  const tls: OtlpTls = {}
  if (ca !== undefined) tls.ca = readCertificate(...ca)
  if (cert !== undefined && key !== undefined) {
    tls.cert = readCertificate(...cert)
    tls.key = readPrivateKey(...key, tls.cert)
  }
  return tls
}
