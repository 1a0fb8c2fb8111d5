// `node --require` this file: at exit, the process writes the paths of every CommonJS module it
// loaded (ESM imports of CommonJS packages land here too) to $LOADED_MODULES_FILE, one JSON array.
const { writeFileSync } = require('node:fs')
process.on('exit', () => {
  writeFileSync(process.env.LOADED_MODULES_FILE, JSON.stringify(Object.keys(require.cache)))
})
