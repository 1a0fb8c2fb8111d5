/**
 * TLS files read and checked at start (Redis's, the OTLP exporter's), not at the first
 * connection: tls ignores a CA file that holds no PEM certificate (every handshake then fails to
 * verify), and refuses a bad client certificate or key only when it connects.
 */
import { readFileSync } from 'node:fs'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { ConfigError } from './settings.js'

/** The file's bytes; `key` is the setting that named it. */
function readTlsFile (key: string, path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new ConfigError(key, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
}

/** A PEM certificate (a CA bundle's first): DER parses too, but tls reads PEM only. */
export function readCertificate (key: string, path: string): Buffer {
  const pem = readTlsFile(key, path)
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('not PEM')
    void new X509Certificate(pem)
  } catch {
    throw new ConfigError(key, `${path} does not hold a PEM certificate`)
  }
  return pem
}

/** The key must parse (an encrypted one cannot: there is no passphrase setting) and match `cert`. */
export function readPrivateKey (key: string, path: string, cert: Buffer): Buffer {
  const pem = readTlsFile(key, path)
  try {
    createPrivateKey(pem)
  } catch {
    throw new ConfigError(key, `${path} does not hold an unencrypted PEM private key`)
  }
  try {
    createSecureContext({ cert, key: pem })
  } catch {
    throw new ConfigError(key, `${path} is not the key of the client certificate`)
  }
  return pem
}
