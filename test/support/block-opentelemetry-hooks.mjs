/**
 * Module hooks for a child process that must prove it never loads OpenTelemetry: resolving any
 * `@opentelemetry/*` specifier fails, so a gateway that imports one does not start.
 */
export async function resolve (specifier, context, nextResolve) {
  if (specifier.includes('@opentelemetry')) throw new Error(`@opentelemetry is blocked in this process: ${specifier}`)
  return await nextResolve(specifier, context)
}
