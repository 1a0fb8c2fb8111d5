/**
 * Types of the part of processes.mjs that TypeScript imports: the tests' servers that take no
 * port 0 (test/support/own-port.ts) check their listeners as the benchmark's nginx does.
 */

/** A loopback port nothing listens on right now (another process may bind it before the one started on it). */
export function freePort (): Promise<number>

/** The ports these processes listen on at 127.0.0.1 (or on a wildcard address). */
export function listeningPorts (pids: number[]): number[]

/** Whether any process listens where a bind to 127.0.0.1:`port` would collide. */
export function hasListener (port: number): boolean

/** A port picked in advance (`freePort`) that another process bound before ours did. */
export class PortTakenError extends Error {}
