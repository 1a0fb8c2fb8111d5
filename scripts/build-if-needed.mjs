// `npm start` runs this first: compile when dist/ is missing or older than src/, so a fresh
// clone starts with one command, and a production image (built dist/, no TypeScript) skips it.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const entry = 'dist/src/cli.js'

function newestMtime (dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

const stale = !existsSync(entry) || (existsSync('src') && newestMtime('src') > statSync(entry).mtimeMs)
if (stale) {
  if (!existsSync('node_modules/typescript')) {
    console.error(`session-gateway: ${entry} is missing or stale and TypeScript is not installed; run "npm install" first.`)
    process.exit(1)
  }
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' })
}
