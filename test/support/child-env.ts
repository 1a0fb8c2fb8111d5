/**
 * The environment for a child Node process a test starts, without what tap put in
 * NODE_OPTIONS for its own test processes (`--import` of @tapjs/processinfo). Inherited, it
 * makes every child load tap's hooks first: seconds per process on a busy machine, multiplied
 * by every process a benchmark or soak run starts, for nothing a test asserts.
 */
export function envWithoutTapHooks (env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const options = (env.NODE_OPTIONS ?? '').split(/\s+/).filter((option) => option !== '' && !option.includes('@tapjs/'))
  const { NODE_OPTIONS: _dropped, ...rest } = env
  return options.length === 0 ? rest : { ...rest, NODE_OPTIONS: options.join(' ') }
}
