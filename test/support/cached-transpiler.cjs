/**
 * ts-node's transpiler for the tests (tsconfig.tap.json), with its output kept on disk.
 *
 * Every test file runs in a process of its own, and each one transpiled again every TypeScript
 * file it imports, most of src/ for an end-to-end test: about 3 s of CPU per file, the same
 * work 86 times a pass. On a miss this does exactly what ts-node does without a custom
 * transpiler (its own transpileModule, the same options); the result is stored under a key
 * made of everything the output depends on, so an edited file or option is a new key.
 * Output with diagnostics is not stored, so ts-node reports them every time.
 */
'use strict'
const { createHash } = require('node:crypto')
const { mkdirSync, readFileSync, renameSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { dirname, join } = require('node:path')

const DIR = join(tmpdir(), 'session-gateway-ts-cache')

exports.create = function create ({ service, nodeModuleEmitKind }) {
  const ts = service.projectLocalResolveHelper === undefined ? require('typescript') : require(service.projectLocalResolveHelper('typescript', true))
  const tsNode = dirname(require.resolve('@isaacs/ts-node-temp-fork-for-pr-2009'))
  const { createTsTranspileModule } = require(join(tsNode, 'ts-transpile-module.js'))
  const compilerOptions = service.config.options
  const transpileModule = createTsTranspileModule(ts, { compilerOptions, reportDiagnostics: true })
  const format = nodeModuleEmitKind === 'nodeesm' ? 'module' : 'commonjs'
  const salt = JSON.stringify([ts.version, compilerOptions, format, readFileSync(__filename, 'utf8')])
  return {
    transpile (code, { fileName }) {
      const key = createHash('sha256').update(salt).update('\0').update(fileName).update('\0').update(code).digest('hex')
      const file = join(DIR, `${key}.json`)
      try {
        return JSON.parse(readFileSync(file, 'utf8'))
      } catch {}
      const result = transpileModule(code, { fileName }, format)
      if (result.diagnostics === undefined || result.diagnostics.length === 0) {
        // Written whole then renamed: a test process running beside this one never reads half a file.
        const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`
        try {
          mkdirSync(DIR, { recursive: true })
          writeFileSync(temporary, JSON.stringify({ outputText: result.outputText, sourceMapText: result.sourceMapText }))
          renameSync(temporary, file)
        } catch {}
      }
      return result
    }
  }
}
